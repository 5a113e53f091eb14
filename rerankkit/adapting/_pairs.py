"""Scoring ``(query, document)`` pairs, for adapters to cross-encoder interfaces such as
LangChain's ``BaseCrossEncoder.score(text_pairs)`` (:func:`score_pairs`).

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> score_pairs(KeywordReranker(), [("cat", "a cat"), ("dog", "a cat"), ("cat", "cat cat")])
    [1.0, 0.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankkit._base import Reranker
from rerankkit.adapting._empty_query import EmptyQueryMode, unranked_fallback

__all__ = ["UNRANKED_PAIR_SCORE", "check_pointwise", "score_pairs"]

UNRANKED_PAIR_SCORE = 0.0
"""The score of a pair whose query is blank (with ``on_empty_query="retrieval_order"``): all
equal, so a stable sort keeps such documents in retrieval order."""


def check_pointwise(reranker: Reranker, argument: str = "reranker") -> Reranker:
    """``reranker`` if its scores are per pair (``reranker.pointwise``), as a pair scorer needs.

    Raises:
        TypeError: It is not a ``Reranker``, or not pointwise (a listwise LLM, a fusion).

    Example:
        >>> from rerankkit.testing import FixedScoreReranker
        >>> check_pointwise(FixedScoreReranker([1.0]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: reranker must be pointwise (score each pair alone), got FixedScoreReranker...
    """
    if not isinstance(reranker, Reranker):
        raise TypeError(f"{argument} must be a rerankkit.Reranker, got {type(reranker).__name__}")
    if not reranker.pointwise:
        raise TypeError(
            f"{argument} must be pointwise (score each pair alone), got "
            f"{type(reranker).__name__}, whose scores depend on the other documents"
        )
    return reranker


def score_pairs(
    reranker: Reranker,
    pairs: Sequence[Any],
    *,
    on_empty_query: EmptyQueryMode = "retrieval_order",
) -> list[float]:
    """One score per ``(query, document)`` pair, in order, in one ``score_many`` call.

    Pairs are grouped by query (so a pointwise backend batches them together) and the scores
    put back in the pairs' order; the reranker's score scale is kept. A blank query's pairs
    score :data:`UNRANKED_PAIR_SCORE` with one warning, or raise with
    ``on_empty_query="raise"`` (see :mod:`rerankkit.adapting._empty_query`).

    Raises:
        TypeError: A pair is not two strings (its position named).
        ValueError: A blank query with ``on_empty_query="raise"``.
    """
    groups: dict[str, list[int]] = {}
    blank: list[int] = []
    for position, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"text_pairs[{position}] must be a (query, document) pair")
        query, document = pair
        if not isinstance(query, str) or not isinstance(document, str):
            raise TypeError(f"text_pairs[{position}] must hold two str")
        if query.strip():
            groups.setdefault(query, []).append(position)
        else:
            blank.append(position)
    if blank:  # one warning (or the core's ValueError) for all of them
        unranked_fallback("", blank, top_n=None, on_empty_query=on_empty_query)
    scores = [UNRANKED_PAIR_SCORE] * len(pairs)
    work = list(groups.items())
    scored = reranker.score_many([(q, [pairs[i][1] for i in at]) for q, at in work])
    for (_, positions), group_scores in zip(work, scored, strict=True):
        for position, score in zip(positions, group_scores, strict=True):
            scores[position] = score
    return scores
