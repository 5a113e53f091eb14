"""Pure ordering: scores in input order -> finite scores, sorted, thresholded, cut results."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from rerankkit._blank import is_blank
from rerankkit._result import (
    _NO_DETAILS,
    EMPTY_KEY,
    ERROR_KEY,
    FAILED_KEY,
    HIGHEST_SCORE,
    LOWEST_SCORE,
    RerankResult,
    is_unscored,
)

logger = logging.getLogger(__name__)

Details = Sequence[Mapping[str, Any]] | None


def check_count(
    values: Sequence[Any], expected: int, what: str = "scores", of: str = "documents"
) -> None:
    """Refuse a backend answer of the wrong length (a backend bug; we never guess which
    document a score belongs to, or which group a score list).

    Raises:
        RuntimeError: ``len(values) != expected``.
    """
    if len(values) != expected:
        raise RuntimeError(f"backend returned {len(values)} {what} for {expected} {of}")


def finite_scores(
    scores: Sequence[Any], expected: int, details: Details = None
) -> tuple[list[float], Details]:
    """A backend's raw scores as finite plain floats, with failed documents flagged.

    NaN is how a backend says "no score" (a failed call, a broken model output): it becomes
    ``LOWEST_SCORE`` and the document's details gain ``rerank_failed: True`` and a
    ``rerank_error`` (the backend's own, else ``"the model returned NaN"``). Infinities and
    anything beyond ``[LOWEST_SCORE, HIGHEST_SCORE]`` are clipped to that range, so order is
    kept and every value is JSON-strict.

    Returns:
        The scores, and the details (``None`` when the backend gave none and nothing failed).

    Raises:
        RuntimeError: the backend returned the wrong number of scores or details.

    Example:
        >>> scores, details = finite_scores([0.5, float("nan"), float("inf")], 3)
        >>> scores
        [0.5, -1e+30, 1e+30]
        >>> details[1]
        {'rerank_failed': True, 'rerank_error': 'the model returned NaN'}
    """
    check_count(scores, expected)
    if details is not None:
        check_count(details, expected, "details")
    cleaned: list[float] = []
    flagged: list[Mapping[str, Any]] = list(details) if details else [_NO_DETAILS] * expected
    unexplained: list[int] = []
    for position, raw in enumerate(scores):
        value = float(raw)
        if math.isnan(value):
            error = flagged[position].get(ERROR_KEY)
            if not error:
                unexplained.append(position)
            error = error or "the model returned NaN"
            flagged[position] = {**flagged[position], FAILED_KEY: True, ERROR_KEY: error}
            value = LOWEST_SCORE
        cleaned.append(min(max(value, LOWEST_SCORE), HIGHEST_SCORE))
    if unexplained:  # a backend that explains its failures has already logged them
        logger.warning(
            "NaN scores at positions %s ranked last, flagged rerank_failed", unexplained[:20]
        )
    if details is None and not any(flagged):
        return cleaned, None
    return cleaned, flagged


def live_positions(documents: Sequence[str]) -> list[int]:
    """Positions of the documents a model should see: those that are not blank (whitespace
    and invisible format characters only, see ``rerankkit._blank``).

    Example:
        >>> live_positions(["a", "", "  \\n", "\\u200b\\ufeff", "b"])
        [0, 4]
    """
    return [position for position, text in enumerate(documents) if not is_blank(text)]


def with_empty_documents(
    total: int, live: Sequence[int], scores: Sequence[float], details: Details
) -> tuple[list[float], Details]:
    """Scores and details of all ``total`` documents from those of the ``live`` ones.

    An empty document (a position not in ``live``) scores ``LOWEST_SCORE`` with
    ``{"empty_document": True}``.

    Example:
        >>> scores, details = with_empty_documents(3, [0, 2], [0.5, 0.7], None)
        >>> scores, [dict(extra) for extra in details]
        ([0.5, -1e+30, 0.7], [{}, {'empty_document': True}, {}])
    """
    if len(live) == total:
        return list(scores), details
    all_scores = [LOWEST_SCORE] * total
    all_details: list[Mapping[str, Any]] = [{EMPTY_KEY: True}] * total
    for i, position in enumerate(live):
        all_scores[position] = scores[i]
        all_details[position] = details[i] if details else _NO_DETAILS
    return all_scores, all_details


def rank(
    scores: Sequence[float],
    *,
    top_n: int | None = None,
    score_threshold: float | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
    tie_break: Sequence[float] | None = None,
) -> list[RerankResult]:
    """Sort by descending score (ties keep input order, judged documents before unscored
    ones), keep ``score >= score_threshold``, then cut to ``top_n``.

    ``tie_break`` (one value per document, higher first) orders equal scores before input
    order: a calibrated reranker passes its raw scores, so a monotone map that makes two
    different raw scores equal probabilities keeps the wrapped reranker's order.

    Arguments are assumed validated (see ``_validation``).

    Example:
        >>> [r.index for r in rank([0.1, 0.9, 0.9, 0.5], top_n=3)]
        [1, 2, 3]
    """

    def key(i: int) -> tuple[float, float, bool]:
        second = -tie_break[i] if tie_break is not None else 0.0
        return -scores[i], second, bool(details) and is_unscored(details[i])  # type: ignore[index]

    order = sorted(range(len(scores)), key=key)  # sorted() is stable
    if score_threshold is not None:
        order = [i for i in order if scores[i] >= score_threshold]
    if top_n is not None:
        order = order[:top_n]
    shown = floored(scores, details)
    return [
        RerankResult(index=i, score=shown[i], details=details[i] if details else _NO_DETAILS)
        for i in order
    ]


class RelevanceCut(NamedTuple):
    """A checked adaptive cut: ``min_relevance`` in [0, 1] and ``on_no_relevant``."""

    min_relevance: float
    on_no_relevant: str


BELOW_MIN_RELEVANCE_KEY = "below_min_relevance"
"""Details key of the one document kept by ``on_no_relevant="best"`` when none reached
``min_relevance``."""


def relevance_cut(
    ranked: Sequence[RerankResult],
    min_relevance: float,
    on_no_relevant: str,
    top_n: int | None,
) -> list[RerankResult]:
    """The adaptive cut: keep ``score >= min_relevance`` (scores are P(relevant)), then at most
    ``top_n``. When none is kept, ``on_no_relevant="empty"`` keeps nothing (abstain) and
    ``"best"`` keeps the best one, flagged ``below_min_relevance: True``.

    ``ranked`` is best first (after any ``score_threshold``); arguments are trusted.

    Example:
        >>> ranked = rank([0.2, 0.9, 0.6])
        >>> [r.index for r in relevance_cut(ranked, 0.5, "empty", None)]
        [1, 2]
        >>> relevance_cut(ranked, 0.95, "empty", None)
        []
        >>> best = relevance_cut(ranked, 0.95, "best", None)
        >>> best, dict(best[0].details)
        ([RerankResult(index=1, score=0.9)], {'below_min_relevance': True})
    """
    # An unjudged (empty/failed) document shows the call's lowest judged score (``floored``):
    # it never counts as reaching ``min_relevance``.
    kept = [r for r in ranked if r.score >= min_relevance and not is_unscored(r.details)]
    if not kept and on_no_relevant == "best" and ranked:
        best = ranked[0]
        kept = [
            RerankResult(best.index, best.score, {**best.details, BELOW_MIN_RELEVANCE_KEY: True})
        ]
    return kept if top_n is None else kept[:top_n]


def floored(scores: Sequence[float], details: Details) -> list[float]:
    """``scores`` with each unjudged document's placeholder (``LOWEST_SCORE``, flagged failed
    or empty) replaced by the lowest judged score of the call (``0.0`` when none was judged).

    What a result carries: a value inside the model's own range, so a mean or a dashboard of
    ``relevance_score`` is not dragged to -1e30, while the flag says the document was not
    judged and :func:`rank` keeps it after every judged one (ties go to judged documents).
    An explicit ``failure_score`` (pointwise LLM) is a real value and stays.

    Example:
        >>> floored([0.9, LOWEST_SCORE, 0.2], [{}, {"empty_document": True}, {}])
        [0.9, 0.2, 0.2]
        >>> floored([LOWEST_SCORE], [{"rerank_failed": True}])
        [0.0]
    """
    if not details:
        return list(scores)
    unjudged = [
        score == LOWEST_SCORE and is_unscored(extra)
        for score, extra in zip(scores, details, strict=True)
    ]
    judged = [score for score, placeholder in zip(scores, unjudged, strict=True) if not placeholder]
    floor = min(judged, default=0.0)
    return [
        floor if placeholder else score for score, placeholder in zip(scores, unjudged, strict=True)
    ]
