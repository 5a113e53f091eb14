"""Fusion of several rankings or rerankers: reciprocal rank fusion and normalised score fusion.

The pure functions (``reciprocal_rank_fusion``, ``fuse_runs``, ``normalize_scores``,
``fuse_scores``) hold all the arithmetic; ``FusionReranker`` applies them to rerankers, and
the LangChain / LlamaIndex hybrid helpers apply them to retrievers. The spelling is
``normalization`` throughout (as in scikit-learn and ranx).

Example:
    >>> reciprocal_rank_fusion([["a", "b", "c"], ["b", "c"]], k=1)
    {'b': 0.8333333333333333, 'c': 0.5833333333333333, 'a': 0.5}
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from rerankkit._base import DetailedReranker, Reranker
from rerankkit._ordering import Details
from rerankkit._result import ERROR_KEY, FAILED_KEY
from rerankkit._validation import (
    check_choice,
    check_number,
    check_sequence,
    check_top_n,
    check_weights,
)

H = TypeVar("H", bound=Hashable)

Ranking = Sequence[H] | Mapping[H, float]
"""Ids best first, or ``{id: score}`` (ranked by descending score; ties keep mapping order)."""

Normalization = Literal["minmax", "zscore"]


def _check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    return check_weights(weights, count) or [1.0] * count  # None: all equal


def _ordered_ids(ranking: Any, position: int) -> list[Any]:
    """The ids of one ranking, best first; duplicates are an error, not silently merged."""
    if isinstance(ranking, Mapping):
        items = list(ranking.items())
        for doc_id, score in items:
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise TypeError(
                    f"rankings[{position}][{doc_id!r}] must be a number, got {type(score).__name__}"
                )
        ids = [doc_id for doc_id, _ in sorted(items, key=lambda item: -float(item[1]))]
    elif isinstance(ranking, (str, bytes)) or not isinstance(ranking, Sequence):
        raise TypeError(
            f"rankings[{position}] must be a sequence of ids or a mapping id -> score, "
            f"got {type(ranking).__name__}"
        )
    else:
        ids = list(ranking)
        repeated = [doc_id for doc_id, count in Counter(ids).items() if count > 1]
        if repeated:
            raise ValueError(f"rankings[{position}] lists {repeated[0]!r} more than once")
    return ids


def reciprocal_rank_fusion(
    rankings: Sequence[Ranking[H]], k: float = 60, weights: Sequence[float] | None = None
) -> dict[H, float]:
    """Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).

    ``score(d) = sum_i weights[i] / (k + rank_i(d))`` with ranks starting at 1; a ranking
    that does not contain ``d`` adds nothing. Only ranks matter, so rankings on different
    score scales (BM25, cosine, logits) fuse without normalisation.

    Args:
        rankings: Each a sequence of ids best first, or a mapping ``{id: score}``.
        k: Smoothing constant (60 in the paper); larger values flatten the head's advantage.
        weights: One non-negative weight per ranking (default: all 1).

    Returns:
        ``{id: fused_score}`` ordered best first; ties keep the order in which ids are first
        met reading the rankings in turn.

    Example:
        >>> reciprocal_rank_fusion([["a", "b"], {"b": 9.0, "c": 1.0}], k=1, weights=[2, 1])
        {'b': 1.1666666666666665, 'a': 1.0, 'c': 0.3333333333333333}
    """
    if isinstance(rankings, (str, bytes, Mapping)) or not isinstance(rankings, Sequence):
        raise TypeError(f"rankings must be a sequence of rankings, got {type(rankings).__name__}")
    k = check_number(k, "k", minimum=0)
    checked_weights = _check_weights(weights, len(rankings))
    return fuse_ids([_ordered_ids(r, i) for i, r in enumerate(rankings)], k, checked_weights)


def fuse_ids(id_lists: Sequence[Sequence[H]], k: float, weights: Sequence[float]) -> dict[H, float]:
    """The RRF arithmetic of :func:`reciprocal_rank_fusion` over checked arguments: lists of
    distinct ids best first, ``k >= 0`` and one weight per list (not checked here)."""
    fused: dict[H, float] = {}
    for ids, weight in zip(id_lists, weights, strict=True):
        for rank, doc_id in enumerate(ids, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
    return dict(sorted(fused.items(), key=lambda item: -item[1]))  # stable: ties first-met


def fuse_runs(
    runs: Sequence[Mapping[Hashable, Mapping[Hashable, float]]],
    k: float = 60,
    weights: Sequence[float] | None = None,
    *,
    top_n: int | None = None,
) -> dict[Hashable, dict[Hashable, float]]:
    """RRF of whole runs ``{query_id: {doc_id: score}}`` (e.g. BM25 and dense), query by query.

    A query missing from a run gets nothing from that run. ``top_n`` cuts each fused list.

    Example:
        >>> fuse_runs([{"q": {"a": 3.0, "b": 1.0}}, {"q": {"b": 0.9}}], k=1)
        {'q': {'b': 0.8333333333333333, 'a': 0.5}}
    """
    top_n = check_top_n(top_n)
    k = check_number(k, "k", minimum=0)
    checked_weights = _check_weights(weights, len(runs))
    fused_run: dict[Hashable, dict[Hashable, float]] = {}
    for qid in dict.fromkeys(qid for run in runs for qid in run):  # each query, first met first
        rankings = [_ordered_ids(run.get(qid, {}), i) for i, run in enumerate(runs)]
        fused = fuse_ids(rankings, k, checked_weights)
        fused_run[qid] = dict(list(fused.items())[:top_n])
    return fused_run


def normalize_scores(scores: Sequence[float], normalization: Normalization) -> list[float]:
    """Put one list of scores on a common scale before score fusion.

    ``"minmax"`` maps the finite scores to [0, 1] (all equal: every score becomes 1.0, as
    LlamaIndex's relative-score fusion does, so a single candidate keeps full weight);
    ``"zscore"`` subtracts the mean and divides by the population standard deviation (all
    equal: 0.0). Infinite scores stay infinite and do not enter the statistics
    (``FusionReranker`` leaves failed documents out before normalising). ``normalization``
    is trusted: ``FusionReranker`` checked it.

    Example:
        >>> normalize_scores([2.0, 4.0, 3.0], "minmax")
        [0.0, 1.0, 0.5]
        >>> normalize_scores([1.0, 3.0], "zscore")
        [-1.0, 1.0]
    """
    values = [float(score) for score in scores]
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return values
    if normalization == "minmax":
        low, high = min(finite), max(finite)
        span = high - low

        def scale(value: float) -> float:
            return (value - low) / span if span > 0 else 1.0
    else:
        mean, std = statistics.fmean(finite), statistics.pstdev(finite)

        def scale(value: float) -> float:
            return (value - mean) / std if std > 0 else 0.0

    return [scale(value) if math.isfinite(value) else value for value in values]


def fuse_scores(
    score_lists: Sequence[Sequence[float]],
    normalization: Normalization | None = "minmax",
    weights: Sequence[float] | None = None,
) -> list[float]:
    """Weighted sum of per-document scores from several scorers, each normalised first.

    All lists score the same documents in the same order; ``weights`` has one entry per list
    (``None``: all 1). The arguments are trusted: ``FusionReranker`` checked them.

    Example:
        >>> fuse_scores([[0.0, 10.0, 5.0], [1.0, 0.0, 0.5]], "minmax", weights=[1, 3])
        [3.0, 1.0, 2.0]
    """
    normalized = [
        normalize_scores(scores, normalization) if normalization else [float(s) for s in scores]
        for scores in score_lists
    ]
    weights = weights or [1.0] * len(normalized)
    count = len(normalized[0]) if normalized else 0
    return [
        math.fsum(w * column[i] for w, column in zip(weights, normalized, strict=True))
        for i in range(count)
    ]


class FusionReranker(DetailedReranker):
    """Several rerankers as one: reciprocal rank fusion or normalised score fusion.

    Each reranker scores every document; ``method="rrf"`` fuses their rankings (no scale
    issues, score = RRF score), ``method="score"`` fuses their ``normalization``-scaled scores
    (keeps how much better one document is than another). Every result's ``details`` carries
    ``{"fusion_scores": (score_1, score_2, ...)}``: each reranker's raw score.

    A document that any reranker failed to score (``rerank_failed``) is left out of the
    fusion: it ranks last, flagged, with a ``rerank_error`` naming the reranker, and does not
    enter the others' normalisation statistics or ranks.

    Args:
        rerankers: Two or more rerankers.
        method: ``"rrf"`` or ``"score"``.
        normalization: ``"minmax"``, ``"zscore"`` or ``None`` (raw scores); ``"score"`` only.
        weights: One non-negative weight per reranker.
        k: RRF constant.

    Example:
        >>> from rerankkit.testing import FunctionReranker, KeywordReranker
        >>> shortest = FunctionReranker(lambda q, d: -len(d))
        >>> fused = FusionReranker([KeywordReranker(), shortest])
        >>> [r.index for r in fused.rerank("cat", ["a cat sat on a mat", "cat", "dog"])]
        [1, 0, 2]
    """

    def __init__(
        self,
        rerankers: Sequence[Reranker],
        *,
        method: Literal["rrf", "score"] = "rrf",
        normalization: Normalization | None = "minmax",
        weights: Sequence[float] | None = None,
        k: float = 60,
    ) -> None:
        self.rerankers = check_sequence(rerankers, Reranker, "rerankers")
        if not self.rerankers:
            raise ValueError("rerankers must not be empty")
        self.method = check_choice(method, "method", ("rrf", "score"))
        self.normalization = check_choice(
            normalization, "normalization", ("minmax", "zscore", None)
        )
        self.weights = _check_weights(weights, len(self.rerankers))
        self.k = check_number(k, "k", minimum=0)

    @property
    def pointwise(self) -> bool:
        """``True`` only for ``method="score"`` with ``normalization=None`` over pointwise
        rerankers (a weighted sum of per-document scores). RRF fuses ranks, and min-max or
        z-score normalisation uses the statistics of the call's documents: either way a
        document's score depends on the other documents."""
        return (
            self.method == "score"
            and self.normalization is None
            and all(reranker.pointwise for reranker in self.rerankers)
        )

    def _fuse(self, judged: Sequence[tuple[list[float], Details]]) -> tuple[list[float], Details]:
        # judged: each reranker's finite scores and flagged details (Reranker._judge)
        score_lists = [scores for scores, _ in judged]
        count = len(score_lists[0])
        errors: dict[int, str] = {}
        for stage, (_, stage_details) in enumerate(judged):
            for i, extra in enumerate(stage_details or ()):
                if extra.get(FAILED_KEY) and i not in errors:
                    errors[i] = f"rerankers[{stage}]: {extra.get(ERROR_KEY, 'failed')}"
        kept = [i for i in range(count) if i not in errors]
        fused = [math.nan] * count  # NaN: the base ranks it last and flags it (errors below)
        kept_lists = [[scores[i] for i in kept] for scores in score_lists]
        if self.method == "score":
            kept_fused = fuse_scores(kept_lists, self.normalization, self.weights)
        else:
            rankings = [  # best first; a stable sort keeps ties in input order
                sorted(range(len(kept)), key=scores.__getitem__, reverse=True)
                for scores in kept_lists
            ]
            by_position = fuse_ids(rankings, self.k, self.weights)
            kept_fused = [by_position[i] for i in range(len(kept))]
        for i, value in zip(kept, kept_fused, strict=True):
            fused[i] = value
        details = [
            {"fusion_scores": tuple(scores[i] for scores in score_lists)}
            | ({ERROR_KEY: errors[i]} if i in errors else {})
            for i in range(count)
        ]
        return fused, details

    def _score_with_details(self, query: str, documents: list[str]) -> tuple[list[float], Details]:
        # _judge, not score: the fusion needs each reranker's failure flags
        return self._fuse([reranker._judge(query, documents) for reranker in self.rerankers])

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[list[float], Details]:
        judged = await asyncio.gather(
            *(reranker._ajudge(query, documents) for reranker in self.rerankers)
        )
        return self._fuse(list(judged))

    def __repr__(self) -> str:
        return (
            f"FusionReranker({self.rerankers!r}, method={self.method!r}, "
            f"normalization={self.normalization!r}, weights={self.weights!r}, k={self.k!r})"
        )
