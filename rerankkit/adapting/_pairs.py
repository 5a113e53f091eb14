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
from rerankkit._blank import is_blank
from rerankkit._validation import check_query, check_text
from rerankkit.adapting._rerank import warn_unranked

UNRANKED_PAIR_SCORE = 0.0
"""The score of a pair whose query is blank (with ``on_empty_query="unranked"``): all equal,
so a stable sort keeps such documents in retrieval order."""


def score_pairs(
    reranker: Reranker, pairs: Sequence[Any], *, on_empty_query: str = "unranked"
) -> list[float]:
    """One score per ``(query, document)`` pair, in order, in one ``score_many`` pass.

    Pairs are grouped by query (so a pointwise backend batches them together) and the scores
    put back in the pairs' order, on the reranker's score scale. A blank query's pairs score
    ``0.0`` (all equal) with one warning, or raise with ``on_empty_query="raise"``.

    Args:
        reranker: A pointwise reranker (see ``PointwiseRerankerField``).
        pairs: The caller's ``(query, document)`` pairs.
        on_empty_query: ``"unranked"`` or ``"raise"``, as checked by the caller's field.

    Raises:
        TypeError: A pair is not two strings (its position named).
        InvalidTextError: A query or document holds a lone surrogate (position named).
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
        check_text(query, f"text_pairs[{position}] query")
        check_text(document, f"text_pairs[{position}] document")
        if not is_blank(query):
            groups.setdefault(query, []).append(position)
        else:
            blank.append(position)
    if blank and on_empty_query == "raise":
        check_query("")  # the core's ValueError
    if blank:  # one warning for all of them
        warn_unranked("empty query", len(blank), len(blank), "on_empty_query")
    scores = [UNRANKED_PAIR_SCORE] * len(pairs)
    work = list(groups.items())
    scored = reranker._score_groups([(q, [pairs[i][1] for i in at]) for q, at in work])
    for (_, positions), group_scores in zip(work, scored, strict=True):
        for position, score in zip(positions, group_scores, strict=True):
            scores[position] = score
    return scores
