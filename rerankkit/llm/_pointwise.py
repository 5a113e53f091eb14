"""LLM-as-reranker, pointwise: one prompt per document, yes/no probability or a rating."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

from rerankkit._base import Group, GroupBatchedReranker, split_by_group
from rerankkit._ordering import Details
from rerankkit._result import ERROR_KEY, FAILED_KEY
from rerankkit._retry import RetryPolicy, is_transient
from rerankkit._validation import check_choice, check_int, check_number
from rerankkit.errors import LLMCallError
from rerankkit.llm._calls import complete_all, run_sync
from rerankkit.llm._parsing import (
    NO_WORDS,
    YES_WORDS,
    p_yes_from_logprobs,
    parse_rating,
    parse_yes_no,
)
from rerankkit.llm._prompts import RATING_PROMPT, YES_NO_PROMPT, check_template
from rerankkit.llm._protocol import Completion, CompletionLLM, as_llm

logger = logging.getLogger(__name__)

PointwiseMethod = Literal["yes_no", "rating"]


class LLMPointwiseReranker(GroupBatchedReranker):
    """Scores each document with its own LLM call.

    ``method="yes_no"`` asks whether the passage is relevant. When the LLM returns next-token
    log-probabilities the score is P(yes) (summed over "Yes"/" yes"/"YES"... variants and
    normalised against the no variants), a calibrated value in [0, 1]; otherwise the answer is
    parsed to 1.0 (yes) or 0.0 (no). ``method="rating"`` asks for a grade on
    ``scale=(low, high)`` and the score is that grade.

    Calls run concurrently, at most ``max_concurrency`` at a time (an asyncio semaphore in
    ``arerank``; a thread pool of that size in ``rerank``), each with ``timeout`` seconds and
    up to ``max_retries`` retries with exponential backoff on transient errors. (Python cannot
    interrupt a sync call that timed out: it keeps its worker until it returns, so it still
    counts against ``max_concurrency``, as it still loads the provider.) A document
    whose call still fails, or whose answer cannot be parsed, is never dropped: it scores
    ``LOWEST_SCORE`` (-1e30, finite) and ranks last, or scores ``failure_score`` when one is
    given, with a logged warning. ``on_error="raise"`` raises the call's error instead. The
    ``details`` of each result say what happened: ``llm_answer`` (the answer's text) and, for
    a failed document, ``rerank_failed: True`` and ``rerank_error`` (the call's error, or
    ``"unparseable answer"``).

    Args:
        llm: An object with ``complete(prompt)`` (see ``rerankkit.CompletionLLM``), a plain
            callable ``prompt -> str``, or a LangChain/LlamaIndex model wrapped by its
            adapter's ``as_rerankkit_llm``.
        method: ``"yes_no"`` or ``"rating"``.
        prompt: Template with ``{query}`` and ``{document}`` (plus ``{low}``/``{high}`` for
            ratings). Defaults: ``prompts.YES_NO_PROMPT`` / ``prompts.RATING_PROMPT``.
        scale: ``(low, high)`` for ratings.
        max_concurrency, timeout, max_retries, backoff, max_backoff, retry_on: How each call
            is made, the fields of :class:`rerankkit.RetryPolicy` (checked there): calls in
            flight at once; seconds per call attempt (``None``: no limit); retries after a
            transient error; the first retry delay in seconds (doubled each retry, full
            jitter), capped at ``max_backoff``; the predicate for transient errors (default:
            timeouts, connection errors, rate limits, HTTP 5xx).
        on_error: ``"score"`` (failure_score + warning) or ``"raise"``.
        failure_score: Score of a document whose call failed or answer was unparseable;
            ``None`` (default) ranks it last with ``LOWEST_SCORE``. Must be finite.
        max_document_chars: Cut each document to this many characters in the prompt.
        yes_words, no_words: Answers read as yes / no (case-insensitive).

    Example:
        >>> from rerankkit import FunctionLLM
        >>> llm = FunctionLLM(lambda p: "yes" if "Paris" in p.split("<passage>")[1] else "no")
        >>> reranker = LLMPointwiseReranker(llm)
        >>> reranker.rerank("capital of France", ["Berlin is big.", "Paris is the capital."])
        [RerankResult(index=1, score=1.0), RerankResult(index=0, score=0.0)]
    """

    def __init__(
        self,
        llm: CompletionLLM | Callable[[str], str | Completion],
        *,
        method: PointwiseMethod = "yes_no",
        prompt: str | None = None,
        scale: tuple[float, float] = (0, 10),
        max_concurrency: int = 8,
        timeout: float | None = 60.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        retry_on: Callable[[BaseException], bool] = is_transient,
        on_error: Literal["score", "raise"] = "score",
        failure_score: float | None = None,
        max_document_chars: int | None = 4000,
        yes_words: Collection[str] = YES_WORDS,
        no_words: Collection[str] = NO_WORDS,
    ) -> None:
        self.method: PointwiseMethod = check_choice(method, "method", ("yes_no", "rating"))
        self.on_error = check_choice(on_error, "on_error", ("score", "raise"))
        low, high = (float(v) for v in scale)
        if not low < high:
            raise ValueError(f"scale must be (low, high) with low < high, got {scale!r}")
        self.scale = (low, high)
        self.max_document_chars = check_int(
            max_document_chars, "max_document_chars", minimum=1, optional=True
        )
        self.failure_score: float | None = check_number(
            failure_score, "failure_score", optional=True
        )
        self.llm = as_llm(llm)
        self.policy = RetryPolicy(
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            retry_on=retry_on,
        )
        self.yes_words = frozenset(w.casefold() for w in yes_words)
        self.no_words = frozenset(w.casefold() for w in no_words)
        default, scale_fields = (
            (YES_NO_PROMPT, set()) if method == "yes_no" else (RATING_PROMPT, {"low", "high"})
        )
        prompt = default if prompt is None else prompt
        self.prompt = check_template(prompt, {"query", "document"}, scale_fields)

    def build_prompt(self, query: str, document: str) -> str:
        """The exact prompt sent for one document."""
        if self.max_document_chars is not None:
            document = document[: self.max_document_chars]
        low, high = (f"{v:g}" for v in self.scale)
        return self.prompt.format(query=query, document=document, low=low, high=high)

    def _interpret(self, completion: Completion) -> float | None:
        if self.method == "rating":
            return parse_rating(completion.text, *self.scale)
        p_yes = p_yes_from_logprobs(completion.top_logprobs, self.yes_words, self.no_words)
        if p_yes is not None:
            return p_yes
        return parse_yes_no(completion.text, self.yes_words, self.no_words)

    def _judge_answer(self, answer: Completion | Exception) -> tuple[float, dict[str, Any]]:
        """One document's score and details; a failed one scores ``failure_score`` or NaN
        (which the base ranks last)."""
        failed = math.nan if self.failure_score is None else self.failure_score
        if isinstance(answer, Exception):
            error = f"{type(answer).__name__}: {answer}"
            if self.on_error == "raise":
                raise LLMCallError(f"LLM call failed: {error}") from answer
            return failed, {FAILED_KEY: True, ERROR_KEY: error}
        judged = self._interpret(answer)
        if judged is None:
            unparseable = {FAILED_KEY: True, ERROR_KEY: "unparseable answer"}
            return failed, {"llm_answer": answer.text, **unparseable}
        return judged, {"llm_answer": answer.text}

    def _collect(
        self, answers: Sequence[Completion | Exception]
    ) -> tuple[list[float], list[dict[str, Any]]]:
        judged = [self._judge_answer(answer) for answer in answers]
        failures = [position for position, (_, extra) in enumerate(judged) if FAILED_KEY in extra]
        if failures:
            first = judged[failures[0]][1]
            problem = first[ERROR_KEY]
            if "llm_answer" in first:
                problem += f" {first['llm_answer'][:200]!r}"
            logger.warning(
                "LLM %s scoring failed for %d of %d documents (positions %s); they %s. "
                "First problem: %s",
                self.method,
                len(failures),
                len(answers),
                failures[:20],
                "rank last"
                if self.failure_score is None
                else f"get failure_score={self.failure_score}",
                problem,
            )
        return [score for score, _ in judged], [extra for _, extra in judged]

    @property
    def pointwise(self) -> bool:
        """``True``: each document is judged in its own prompt."""
        return True

    @property
    def probability_scores(self) -> bool:
        """``True`` for ``method="yes_no"`` (P(yes)); a rating is a grade, not a probability."""
        return self.method == "yes_no"

    def _score_many_with_details(
        self, groups: list[Group]
    ) -> list[tuple[Sequence[float], Details]]:
        # One pool of calls for every document of every group: ``max_concurrency`` stays busy
        # across queries instead of draining at the end of each one.
        prompts = [self.build_prompt(query, doc) for query, docs in groups for doc in docs]
        answers = run_sync(lambda: complete_all(self.llm, prompts, self.policy, use_async=False))
        return [self._collect(group) for group in split_by_group(answers, groups)]

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[list[float], Details]:
        prompts = [self.build_prompt(query, doc) for doc in documents]
        answers = await complete_all(self.llm, prompts, self.policy, use_async=True)
        return self._collect(answers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(llm={self.llm!r}, method={self.method!r})"
