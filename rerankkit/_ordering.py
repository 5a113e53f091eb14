"""Pure ordering: scores in input order -> sorted, thresholded, cut results."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rerankkit._result import _NO_DETAILS, RerankResult

logger = logging.getLogger(__name__)


def clean_scores(scores: Sequence[Any], expected: int) -> list[float]:
    """Plain floats, one per document; NaN becomes ``-inf`` so the document sinks but stays.

    Raises:
        RuntimeError: the backend returned the wrong number of scores (a backend bug; we
            refuse to guess which document a score belongs to).
    """
    if len(scores) != expected:
        raise RuntimeError(f"backend returned {len(scores)} scores for {expected} documents")
    cleaned = [float(score) for score in scores]
    nan_positions = [i for i, score in enumerate(cleaned) if math.isnan(score)]
    if nan_positions:
        logger.warning("NaN scores at positions %s ranked last", nan_positions)
        for i in nan_positions:
            cleaned[i] = -math.inf
    return cleaned


def rank(
    scores: Sequence[float],
    *,
    top_n: int | None = None,
    score_threshold: float | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
) -> list[RerankResult]:
    """Sort by descending score (ties keep input order), keep ``score >= score_threshold``,
    then cut to ``top_n``.

    Arguments are assumed validated (see ``_validation``).

    Example:
        >>> [r.index for r in rank([0.1, 0.9, 0.9, 0.5], top_n=3)]
        [1, 2, 3]
    """
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # sorted() is stable
    if score_threshold is not None:
        order = [i for i in order if scores[i] >= score_threshold]
    if top_n is not None:
        order = order[:top_n]
    return [
        RerankResult(index=i, score=scores[i], details=details[i] if details else _NO_DETAILS)
        for i in order
    ]
