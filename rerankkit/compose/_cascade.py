"""Cascades: a cheap reranker narrows the candidates, a costly one orders the survivors.

Example of the usual stack: a cross-encoder keeps 20 of 100 candidates, an LLM orders
those 20 and keeps 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankkit._base import DetailedReranker, Reranker
from rerankkit._ordering import Details
from rerankkit._result import ERROR_KEY, FAILED_KEY, LOWEST_SCORE, RerankResult
from rerankkit._validation import check_instance, check_top_n

Stage = tuple[Reranker, int | None]
"""One stage: a reranker and how many documents it keeps (``top_n``; ``None`` keeps all)."""


def _check_stages(stages: Any) -> list[Stage]:
    if isinstance(stages, (str, bytes, Reranker)) or not isinstance(stages, Sequence):
        raise TypeError("stages must be a sequence of (reranker, top_n) pairs")
    if not stages:
        raise ValueError("stages must not be empty")
    checked: list[Stage] = []
    for position, stage in enumerate(stages):
        if not isinstance(stage, tuple) or len(stage) != 2:
            raise TypeError(f"stages[{position}] must be a (reranker, top_n) pair, got {stage!r}")
        reranker = check_instance(stage[0], Reranker, f"stages[{position}][0]")
        checked.append((reranker, check_top_n(stage[1], f"stages[{position}] top_n")))
    return checked


class _Run:
    """The state of one cascade over one query: who is still in, and what each stage said."""

    def __init__(self, documents: list[str]) -> None:
        self.documents = documents
        self.alive = list(range(len(documents)))  # input positions, always in input order
        self.scores: dict[int, list[float]] = {i: [] for i in self.alive}
        self.extras: dict[int, dict[str, Any]] = {i: {} for i in self.alive}

    def candidates(self) -> list[str]:
        return [self.documents[i] for i in self.alive]

    def record(self, results: list[RerankResult]) -> None:
        """Take one stage's (already cut) results over ``candidates()``."""
        survivors = []
        for result in results:
            position = self.alive[result.index]
            self.scores[position].append(result.score)
            extras = self.extras[position]
            extras.pop(FAILED_KEY, None)  # an earlier stage's failure, superseded by this one
            extras.pop(ERROR_KEY, None)
            extras.update(result.details)
            survivors.append(position)
        self.alive = sorted(survivors)


class CascadeReranker(DetailedReranker):
    """Rerank in stages; each stage reranks only the survivors of the one before.

    The last stage's score is the result score. Every result's ``details`` (copied into
    LangChain/LlamaIndex metadata by the adapters) holds ``"stage_scores"``: one score per
    stage, first stage first, plus any details the stages themselves reported (a later stage
    wins a shared key). Documents cut at an earlier stage are not returned by ``rerank``;
    ``score`` gives them ``LOWEST_SCORE`` (-1e30). No document is ever duplicated or invented.

    Empty documents go to the stages, which never score them and rank them last (flagged
    ``empty_document``), so a stage's ``top_n`` cuts them like any other last-ranked
    document. A document that failed in one stage and was scored by a later one is not
    flagged as failed: the flags describe the final score.

    Args:
        stages: ``(reranker, top_n)`` pairs: each stage keeps its best ``top_n`` documents
            (``None`` keeps every document).

    Raises:
        TypeError: ``stages`` is not a sequence of ``(Reranker, int | None)`` pairs, or a
            stage's ``top_n`` is not an int (named ``stages[i] top_n``).
        ValueError: No stages, or a stage's ``top_n < 1``.

    Example:
        >>> from rerankkit.testing import FunctionReranker, KeywordReranker
        >>> shortest = FunctionReranker(lambda q, d: -len(d))
        >>> cascade = CascadeReranker([(KeywordReranker(), 2), (shortest, None)])
        >>> results = cascade.rerank("cat", ["a cat on a mat", "dog", "cat"])
        >>> [(r.index, r.score, r.details["stage_scores"]) for r in results]
        [(2, -3.0, (1.0, -3.0)), (0, -14.0, (1.0, -14.0))]
    """

    _sees_empty_documents = True  # its stages rank and flag them (see the class docstring)

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = _check_stages(stages)

    @classmethod
    def _of_checked(cls, stages: list[Stage]) -> CascadeReranker:
        """A cascade of stages its caller checked (the adapters' hybrid stages)."""
        cascade = cls.__new__(cls)
        cascade.stages = stages
        return cascade

    @property
    def pointwise(self) -> bool:
        """``True`` only when no stage cuts (every ``top_n`` is ``None``) and every stage is
        pointwise. A stage that keeps its top ``top_n`` drops a document by its rank among the
        others, so whether a document survives (and its score) depends on the others."""
        return all(top_n is None and reranker.pointwise for reranker, top_n in self.stages)

    def _cascade(self, query: str, documents: list[str]) -> _Run:
        run = _Run(documents)
        for reranker, top_n in self.stages:
            if run.alive:  # the stages trust what the cascade checked
                run.record(reranker._rerank_checked(query, run.candidates(), top_n, None))
        return run

    async def _acascade(self, query: str, documents: list[str]) -> _Run:
        run = _Run(documents)
        for reranker, top_n in self.stages:
            if run.alive:
                run.record(await reranker._arerank_checked(query, run.candidates(), top_n, None))
        return run

    def _score_with_details(self, query: str, documents: list[str]) -> tuple[list[float], Details]:
        return self._as_scores(self._cascade(query, documents))

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[list[float], Details]:
        return self._as_scores(await self._acascade(query, documents))

    @staticmethod
    def _as_scores(run: _Run) -> tuple[list[float], Details]:
        alive = set(run.alive)
        scores = [
            run.scores[i][-1] if i in alive else LOWEST_SCORE for i in range(len(run.documents))
        ]
        details = [{"stage_scores": tuple(run.scores[i])} for i in range(len(run.documents))]
        for i in alive:
            details[i] = {**run.extras[i], **details[i]}
        return scores, details

    def _select(
        self, scores: list[float], details: Details, top_n: int | None, threshold: float | None
    ) -> list[RerankResult]:
        # Only the survivors of every stage are results: they are the documents scored by
        # the most stages (every stage keeps at least one document, so they reached the last).
        stage_details = details or []  # _as_scores always reports stage scores
        reached = [len(entry["stage_scores"]) for entry in stage_details]
        full = max(reached, default=0)
        survivors = [i for i, n in enumerate(reached) if n == full]
        ranked = super()._select(
            [scores[i] for i in survivors], [stage_details[i] for i in survivors], top_n, threshold
        )
        return [RerankResult(survivors[r.index], r.score, r.details) for r in ranked]

    def __repr__(self) -> str:
        return f"CascadeReranker({self.stages!r})"
