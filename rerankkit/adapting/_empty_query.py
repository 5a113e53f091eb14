"""What an adapter does with an empty or whitespace query (:func:`unranked_fallback`).

The core refuses such a query (``ValueError``): there is nothing to rank by. Inside a
framework that is the wrong place to stop: an agent calls its retriever tool with ``""`` now
and then, and LangChain's own compressors and retrievers do not crash there. So by default an
adapter hands back the documents in retrieval order, cut to ``top_n``, each marked with
:data:`NOT_RERANKED` (``metadata["reranked"] is False``, no ``relevance_score``) and logs one
warning; ``on_empty_query="raise"`` keeps the core's ``ValueError``. ``score_threshold`` and
``reorder`` do not apply (there are no scores).

Example:
    >>> unranked_fallback("  ", ["a", "b", "c"], top_n=2)
    ['a', 'b']
    >>> unranked_fallback("cats", ["a", "b"], top_n=2) is None  # a real query: rerank
    True
    >>> unranked_fallback("", ["a"], top_n=1, on_empty_query="raise")
    Traceback (most recent call last):
    ValueError: query must be a non-empty string
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast, get_args

from rerankkit._validation import check_choice, check_query

T = TypeVar("T")

logger = logging.getLogger(__name__)

EmptyQueryMode = Literal["retrieval_order", "raise"]
"""``"retrieval_order"``: return the documents unranked (marked); ``"raise"``: ValueError."""

EMPTY_QUERY_MODES: tuple[str, ...] = get_args(EmptyQueryMode)

NOT_RERANKED: Mapping[str, Any] = MappingProxyType({"reranked": False})
"""The metadata an adapter adds to each document it returns without reranking it."""

__all__ = [
    "EMPTY_QUERY_MODES",
    "NOT_RERANKED",
    "EmptyQueryMode",
    "check_on_empty_query",
    "unranked_fallback",
]


def check_on_empty_query(value: Any) -> EmptyQueryMode:
    """Return ``value`` if it is one of :data:`EMPTY_QUERY_MODES`.

    Example:
        >>> check_on_empty_query("skip")
        Traceback (most recent call last):
        ValueError: on_empty_query must be one of ['retrieval_order', 'raise'], got 'skip'
    """
    return cast(EmptyQueryMode, check_choice(value, "on_empty_query", EMPTY_QUERY_MODES))


def unranked_fallback(
    query: Any,
    items: Sequence[T],
    *,
    top_n: int | None,
    on_empty_query: EmptyQueryMode = "retrieval_order",
) -> list[T] | None:
    """The items to return unranked for an empty query, or ``None`` to rerank as usual.

    Args:
        query: The caller's query; anything but a blank ``str`` gives ``None`` (the core
            then validates it as always: a non-``str`` is still a TypeError).
        items: The retrieved items, in retrieval order.
        top_n: Keep at most this many (``None`` keeps all).
        on_empty_query: See :data:`EmptyQueryMode`.

    Returns:
        ``None`` for a non-blank query; otherwise the first ``top_n`` items (a new list),
        after logging one warning.

    Raises:
        ValueError: A blank query with ``on_empty_query="raise"`` (the core's message).
    """
    if not isinstance(query, str) or query.strip():
        return None
    if check_on_empty_query(on_empty_query) == "raise":
        check_query(query)
    kept = list(items)[:top_n]
    logger.warning(
        "empty query: returning %d of %d documents in retrieval order, not reranked "
        "(metadata reranked=False; on_empty_query='raise' raises instead)",
        len(kept),
        len(items),
    )
    return kept
