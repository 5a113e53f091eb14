"""Pick a ``score_threshold`` from data: the score distribution of a reranker on a sample.

A threshold only means something on a known scale (sigmoid probabilities, raw logits,
cosines, LLM grades differ), and even on a known scale the right cut depends on your
documents. Score a few dozen real queries with their candidates, look at the quantiles,
and, if you can label which candidates are relevant, take the threshold that maximises F1.

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> samples = [("red apple", ["apple pie", "red apple", "pear"]), ("pear", ["pear", "fig"])]
    >>> report = score_distribution(KeywordReranker(), samples, labels=[[0, 1, 0], [1, 0]])
    >>> report.count, report.maximum, report.best_f1_threshold
    (5, 2.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rerankkit._base import Reranker
from rerankkit._result import LOWEST_SCORE

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class ScoreDistribution:
    """Summary of the scores a reranker gave a sample of (query, candidates).

    Attributes:
        count: Scored (query, document) pairs.
        queries: Queries in the sample.
        minimum, maximum, mean, std: Over all model scores (population std); documents that
            failed or were empty (``LOWEST_SCORE``) and non-finite values are left out and
            counted in ``non_finite``.
        quantiles: ``{q: score}``; ``score_threshold=quantiles[0.9]`` keeps about the top
            10% of candidates.
        top_score_quantiles: The same quantiles over each query's best score: a threshold
            above ``top_score_quantiles[0.1]`` leaves about 10% of queries with no result.
        best_f1_threshold: With labels: the threshold maximising F1 of "score >= threshold"
            against the labels (``None`` without labels or with no relevant document).
        best_f1, precision, recall: F1, precision and recall at that threshold.
        relevant_median, non_relevant_median: With labels: median score of each group.
    """

    count: int
    queries: int
    minimum: float
    maximum: float
    mean: float
    std: float
    quantiles: dict[float, float]
    top_score_quantiles: dict[float, float]
    best_f1_threshold: float | None = None
    best_f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    relevant_median: float | None = None
    non_relevant_median: float | None = None
    non_finite: int = field(default=0)

    def suggested_thresholds(self) -> dict[str, float]:
        """Thresholds worth trying, named by what they do.

        Example:
            >>> summarize_scores([[0.1, 0.5, 0.9]]).suggested_thresholds()["keep ~50%"]
            0.5
        """
        suggestions = {
            f"keep ~{round((1 - q) * 100)}%": value
            for q, value in self.quantiles.items()
            if q >= 0.5
        }
        if self.best_f1_threshold is not None:
            suggestions["best F1 on labels"] = self.best_f1_threshold
        return suggestions

    def to_markdown(self) -> str:
        """A small markdown report: summary, quantiles, suggested thresholds."""
        lines = [
            f"{self.count} scores over {self.queries} queries: min {self.minimum:.4g}, "
            f"mean {self.mean:.4g}, max {self.maximum:.4g}, std {self.std:.4g}",
            "",
            "| quantile | all scores | best score per query |",
            "|---:|---:|---:|",
        ]
        for q, value in self.quantiles.items():
            lines.append(f"| {q:g} | {value:.4g} | {self.top_score_quantiles[q]:.4g} |")
        lines += ["", "| suggested threshold | value |", "|---|---:|"]
        suggestions = self.suggested_thresholds()
        lines += [f"| {name} | {value:.4g} |" for name, value in suggestions.items()]
        if self.best_f1 is not None:
            lines += [
                "",
                f"At the best-F1 threshold: F1 {self.best_f1:.3f}, precision "
                f"{self.precision:.3f}, recall {self.recall:.3f}; median score of relevant "
                f"{self.relevant_median:.4g} vs non-relevant {self.non_relevant_median:.4g}.",
            ]
        return "\n".join(lines)


def best_f1_threshold(
    scores: Sequence[float], labels: Sequence[bool | int]
) -> tuple[float, float, float, float] | None:
    """The threshold ``t`` maximising F1 of ``score >= t`` against binary labels.

    ``scores`` and ``labels`` have one entry per document (:func:`summarize_scores` checks
    that). Only the distinct scores are candidate thresholds; on equal F1 the higher (stricter)
    threshold wins. Returns ``(threshold, f1, precision, recall)``, or ``None`` when no
    label is positive.

    Example:
        >>> best_f1_threshold([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
        (0.3, 0.8, 0.6666666666666666, 1.0)
    """
    positives = sum(1 for label in labels if label)
    if positives == 0:
        return None
    pairs = sorted(zip(scores, labels, strict=True), key=lambda pair: -pair[0])
    best: tuple[float, float, float, float] | None = None
    true_positives = 0
    for i, (score, label) in enumerate(pairs):
        true_positives += 1 if label else 0
        if i + 1 < len(pairs) and pairs[i + 1][0] == score:
            continue  # a threshold keeps all equal scores together
        predicted = i + 1
        precision, recall = true_positives / predicted, true_positives / positives
        f1 = 2 * precision * recall / (precision + recall) if true_positives else 0.0
        if best is None or f1 > best[1]:
            best = (float(score), f1, precision, recall)
    return best


def _model_scores(values: np.ndarray) -> np.ndarray:
    """``values`` without non-finite scores and ``LOWEST_SCORE``, which marks a failed or
    empty document (``rerankkit._result``): not model scores."""
    kept: np.ndarray = values[np.isfinite(values) & (values > LOWEST_SCORE)]
    return kept


def summarize_scores(
    per_query_scores: Sequence[Sequence[float]],
    labels: Sequence[Sequence[bool | int]] | None = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> ScoreDistribution:
    """Pure part of ``score_distribution``: summarise scores already computed, query by query.

    Example:
        >>> summarize_scores([[0.0, 1.0], [0.5]]).quantiles[0.5]
        0.5
    """
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1], got {q}")
    if labels is not None and len(labels) != len(per_query_scores):
        raise ValueError(f"labels has {len(labels)} entries for {len(per_query_scores)} queries")
    flat = np.array([s for scores in per_query_scores for s in scores], dtype=np.float64)
    finite = _model_scores(flat)
    if finite.size == 0:
        raise ValueError("no finite score to summarise (empty sample?)")
    tops = _model_scores(
        np.array([max(scores) for scores in per_query_scores if len(scores)], dtype=np.float64)
    )

    def at(values: np.ndarray) -> dict[float, float]:
        return {float(q): float(np.quantile(values, q)) for q in quantiles}

    extra: dict[str, Any] = {}
    if labels is not None:
        flat_labels: list[bool] = []
        for position, (scores, query_labels) in enumerate(
            zip(per_query_scores, labels, strict=True)
        ):
            if len(scores) != len(query_labels):
                raise ValueError(
                    f"labels[{position}] has {len(query_labels)} entries for "
                    f"{len(scores)} documents"
                )
            flat_labels.extend(bool(label) for label in query_labels)
        best = best_f1_threshold(flat.tolist(), flat_labels)
        if best is not None:
            extra["best_f1_threshold"], extra["best_f1"], extra["precision"], extra["recall"] = best
        mask = np.asarray(flat_labels, dtype=np.bool_)
        groups = (("relevant_median", flat[mask]), ("non_relevant_median", flat[~mask]))
        for name, group in groups:
            group = _model_scores(group)
            extra[name] = float(np.median(group)) if group.size else None
    return ScoreDistribution(
        count=int(flat.size),
        queries=len(per_query_scores),
        minimum=float(finite.min()),
        maximum=float(finite.max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
        quantiles=at(finite),
        top_score_quantiles=at(tops) if tops.size else {},
        non_finite=int(flat.size - finite.size),
        **extra,
    )


def score_distribution(
    reranker: Reranker,
    samples: Iterable[tuple[str, Sequence[str]]] | Mapping[str, Sequence[str]],
    *,
    labels: Sequence[Sequence[bool | int]] | None = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> ScoreDistribution:
    """Score a sample of (query, candidates) with ``reranker`` and summarise the scores.

    Args:
        reranker: Any reranker.
        samples: ``(query, documents)`` pairs, or ``{query: documents}``; use real queries and
            the candidates your first stage really returns for them.
        labels: Optional relevance per document (truthy = relevant), one list per sample;
            adds the best-F1 threshold.
        quantiles: Quantiles to report.

    Returns:
        A ``ScoreDistribution``; ``print(report.to_markdown())`` for a table.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> score_distribution(KeywordReranker(), {"cat": ["cat", "dog"]}).quantiles[0.5]
        0.5
    """
    pairs = list(samples.items()) if isinstance(samples, Mapping) else list(samples)
    if not pairs:
        raise ValueError("samples must not be empty")
    per_query = [reranker.score(query, documents) for query, documents in pairs]
    return summarize_scores(per_query, labels, quantiles=quantiles)
