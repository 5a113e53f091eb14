"""LLM-as-reranker, listwise: RankGPT-style permutations over sliding windows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from rerankkit._base import DetailedReranker
from rerankkit._ordering import Details
from rerankkit._renamed import refuse_renamed_arguments, refuse_renamed_value
from rerankkit._retry import RetryPolicy, is_transient
from rerankkit._validation import check_choice, check_int
from rerankkit.errors import LLMCallError
from rerankkit.llm._calls import call_with_retries, run_sync, sync_calls
from rerankkit.llm._parsing import parse_permutation
from rerankkit.llm._prompts import LISTWISE_PROMPT, check_template, format_passages
from rerankkit.llm._protocol import Completion, CompletionLLM, as_llm
from rerankkit.llm._windows import (
    apply_window,
    check_window,
    count_windows,
    plan_windows,
    rank_scores,
)

logger = logging.getLogger(__name__)

WINDOW_ERRORS_KEY = "llm_window_errors"
"""Details key of a document that sat in a window the LLM did not rank (failed call or no
ranking in the answer): one ``"window 1-20: reason"`` string per such window. The document
kept its place in that window; it is not ``rerank_failed`` (its score is its final rank)."""


class LLMListwiseReranker(DetailedReranker):
    """Asks an LLM to order passages, window by window, from the bottom of the list to the top.

    One pass makes ``count_windows(n, window_size, stride)`` calls (9 for 100 documents with
    the defaults) and brings the best ``window_size - stride`` documents to the top. Windows
    run one after the other, since each starts from the previous one's order. Each answer is
    parsed leniently (``[3] > [1]`` or ``3, 1``; reasoning blocks, Unicode digits, repeats
    and out-of-range ids handled; missing ids keep their order after the ranked ones). A
    window whose answer states no ranking (a refusal, prose: see ``parse_permutation``), or
    whose call fails after retries, keeps its order and logs one warning
    (``on_error="raise"`` raises instead), and its documents' ``details`` list the problem
    under ``llm_window_errors``: no document is ever lost or duplicated.

    Scores: the document at final rank ``r`` (0-based) scores ``1 / (r + 1)``, so the best is
    1.0 and ``score_threshold=1/k`` keeps the top ``k``. Not ``pointwise``: a document's score
    is its rank among the documents of the same call.

    Args:
        llm: An object with ``complete(prompt)``, a callable ``prompt -> str``, or a
            LangChain/LlamaIndex model wrapped by its adapter's ``as_rerankkit_llm``.
        window_size: Passages per call.
        stride: How far the window moves up each call (``1 <= stride < window_size``: the
            overlap ``window_size - stride`` is what lets documents move between windows);
            ``None``: ``window_size // 2`` (10 for the default 20, as in RankGPT). The old
            spelling ``step`` is refused, naming ``stride``.
        num_passes: Full sliding passes (more passes refine the order further down).
        prompt: Template with ``{query}``, ``{passages}`` and ``{num}``.
        max_passage_chars: Cut each passage to this many characters in the prompt.
        timeout, max_retries, backoff, max_backoff, retry_on: Per-call reliability, the
            fields of :class:`rerankkit.RetryPolicy` (see ``LLMPointwiseReranker``).
        on_error: ``"unranked"`` (the window keeps its order) or ``"raise"`` (the old
            spelling ``"keep"`` is refused, naming ``"unranked"``).

    Raises:
        TypeError, ValueError: A bad argument, naming it (the retry fields: a pydantic
            ``ValidationError``, a ``ValueError``).

    Example:
        >>> from rerankkit import FunctionLLM
        >>> reranker = LLMListwiseReranker(FunctionLLM(lambda prompt: "[3] > [1]"))
        >>> [r.index for r in reranker.rerank("q", ["a", "b", "c"])]
        [2, 0, 1]
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        refuse_renamed_arguments(kwargs, {"step": "stride"}, where=cls.__name__)
        return super().__new__(cls)

    def __init__(
        self,
        llm: CompletionLLM | Callable[[str], str | Completion],
        *,
        window_size: int = 20,
        stride: int | None = None,
        num_passes: int = 1,
        prompt: str = LISTWISE_PROMPT,
        max_passage_chars: int | None = 1000,
        timeout: float | None = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        retry_on: Callable[[BaseException], bool] = is_transient,
        on_error: Literal["unranked", "raise"] = "unranked",
    ) -> None:
        if stride is None:
            stride = check_int(window_size, "window_size", minimum=2) // 2
        self.window_size, self.stride = check_window(window_size, stride)
        self.num_passes: int = check_int(num_passes, "num_passes", minimum=1)
        refuse_renamed_value(on_error, "on_error", {"keep": "unranked"})
        self.on_error = check_choice(on_error, "on_error", ("unranked", "raise"))
        self.max_passage_chars = check_int(
            max_passage_chars, "max_passage_chars", minimum=1, optional=True
        )
        self.llm = as_llm(llm)
        self.prompt = check_template(prompt, {"query", "passages"}, {"num"})
        self.policy = RetryPolicy(
            max_concurrency=1,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            retry_on=retry_on,
        )

    def num_calls(self, n: int) -> int:
        """LLM calls a rerank of ``n`` documents makes."""
        return self.num_passes * count_windows(n, self.window_size, self.stride)

    def build_prompt(self, query: str, passages: Sequence[str]) -> str:
        """The exact prompt sent for one window."""
        block = format_passages(passages, self.max_passage_chars)
        return self.prompt.format(query=query, passages=block, num=len(passages))

    def _next_order(
        self, answer: Completion | Exception, size: int, window: tuple[int, int]
    ) -> tuple[list[int], str | None]:
        """The window's new order, and what went wrong (``None`` if the model ranked it)."""
        if isinstance(answer, Exception):
            problem = f"{type(answer).__name__}: {answer}"
            if self.on_error == "raise":
                raise LLMCallError(
                    f"listwise LLM call for window {window} failed: {problem}"
                ) from answer
            logger.warning(
                "listwise LLM call for window %s failed (%s); the window keeps its order",
                window,
                problem,
            )
            return list(range(size)), problem
        parsed = parse_permutation(answer.text, size)
        if parsed.parsed == 0:
            logger.warning(
                "listwise answer for window %s states no ranking (no usable identifier); the "
                "window keeps its order. Answer: %r",
                window,
                answer.text[:300],
            )
            return list(parsed.order), f"no ranking in the answer {answer.text[:100]!r}"
        if parsed.dropped or parsed.parsed < size:
            logger.debug(
                "window %s: %d of %d ids ranked, %d dropped",
                window,
                parsed.parsed,
                size,
                parsed.dropped,
            )
        return list(parsed.order), None

    async def _arank(
        self, query: str, documents: list[str], *, use_async: bool
    ) -> tuple[list[float], Details]:
        ranking = list(range(len(documents)))
        problems: dict[int, list[str]] = {}
        # Windows run one at a time, but a timed-out sync call keeps its thread until it
        # returns; one spare worker per retry keeps such a call from stalling the next attempt.
        with sync_calls(self.llm, self.policy.max_retries + 1, use_async=use_async) as executor:
            for _ in range(self.num_passes):
                for start, end in plan_windows(len(documents), self.window_size, self.stride):
                    passages = [documents[i] for i in ranking[start:end]]
                    prompt = self.build_prompt(query, passages)
                    answer: Completion | Exception
                    try:
                        answer = await call_with_retries(self.llm, prompt, self.policy, executor)
                    except Exception as error:  # handled per window by _next_order
                        answer = error
                    order, problem = self._next_order(answer, end - start, (start, end))
                    if problem is not None:
                        for document in ranking[start:end]:
                            problems.setdefault(document, []).append(
                                f"window {start + 1}-{end}: {problem}"
                            )
                    ranking = apply_window(ranking, start, end, order)
        details = None
        if problems:  # the document kept its place in a window the model did not rank
            details = [
                {WINDOW_ERRORS_KEY: tuple(problems[i])} if i in problems else {}
                for i in range(len(documents))
            ]
        return rank_scores(ranking), details

    def _score_with_details(self, query: str, documents: list[str]) -> tuple[list[float], Details]:
        return run_sync(lambda: self._arank(query, documents, use_async=False))

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[list[float], Details]:
        return await self._arank(query, documents, use_async=True)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(llm={self.llm!r}, window_size={self.window_size}, "
            f"stride={self.stride})"
        )
