"""What an adapter does when the reranker fails (:func:`rerank_or_fallback`).

A failing model, LLM or remote service must never lose the user's documents: inside a
retriever or a query engine, an exception from the reranker would drop everything retrieval
found. So by default (``on_reranker_error="fallback"``) an adapter hands back the documents in
retrieval order, cut to ``top_n``, each marked ``metadata["reranked"] = False`` and
``metadata["rerank_error"] = "<ExceptionType>: <first line of the message>"`` (a str, at most
:data:`MAX_REASON_CHARS` characters), and logs one warning naming the exception type;
``on_reranker_error="raise"`` lets the exception through. ``score_threshold`` and ``reorder``
do not apply (there are no scores).

What counts as the reranker failing: any :class:`Exception` raised while the reranker runs
(``RemoteServiceError``, ``LLMCallError``, a model's ``RuntimeError``, also a ``ValueError``
from inside a backend). What never falls back: the caller's own bad input (a non-``str`` query,
a text that is not a ``str``, a bad ``top_n``/``score_threshold``/``reorder``), checked here
BEFORE the reranker runs, so its ``TypeError``/``ValueError`` still raises; an empty query
(see :mod:`rerankkit.adapting._empty_query`); and ``BaseException``\\ s that are not
``Exception`` (``KeyboardInterrupt``, ``asyncio.CancelledError``, ``SystemExit``).

Example:
    >>> from rerankkit.testing import FunctionReranker
    >>> def broken(query, text):
    ...     raise RuntimeError("CUDA out of memory")
    >>> outcome = rerank_or_fallback(FunctionReranker(broken), "cat", ["a", "b", "c"],
    ...                              text=str, top_n=2)
    >>> outcome.reranked, outcome.unranked, outcome.unranked_metadata()
    (False, ['a', 'b'], {'reranked': False, 'rerank_error': 'RuntimeError: CUDA out of memory'})
    >>> rerank_or_fallback(FunctionReranker(broken), "cat", ["a"], text=str,
    ...                    on_reranker_error="raise")
    Traceback (most recent call last):
    RuntimeError: CUDA out of memory
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast, get_args

from rerankkit._base import Reranker
from rerankkit._result import RerankResult
from rerankkit._validation import (
    check_choice,
    check_documents,
    check_query,
    check_score_threshold,
    check_top_n,
)
from rerankkit.adapting._empty_query import NOT_RERANKED, EmptyQueryMode, unranked_fallback
from rerankkit.adapting._items import ReorderMode, arerank_items, check_reorder, rerank_items

T = TypeVar("T")

logger = logging.getLogger(__name__)

RerankerErrorMode = Literal["fallback", "raise"]
"""``"fallback"``: return the documents unranked, marked with the error; ``"raise"``: raise."""

RERANKER_ERROR_MODES: tuple[str, ...] = get_args(RerankerErrorMode)

MAX_REASON_CHARS = 300
"""Longest ``rerank_error`` reason kept in metadata (the whole error goes to the tracing)."""

__all__ = [
    "RERANKER_ERROR_MODES",
    "RerankOutcome",
    "RerankerErrorMode",
    "arerank_or_fallback",
    "check_on_reranker_error",
    "error_reason",
    "rerank_or_fallback",
]


def check_on_reranker_error(value: Any) -> RerankerErrorMode:
    """Return ``value`` if it is one of :data:`RERANKER_ERROR_MODES`.

    Example:
        >>> check_on_reranker_error("ignore")
        Traceback (most recent call last):
        ValueError: on_reranker_error must be one of ['fallback', 'raise'], got 'ignore'
    """
    return cast(RerankerErrorMode, check_choice(value, "on_reranker_error", RERANKER_ERROR_MODES))


def error_reason(error: BaseException) -> str:
    """``"<ExceptionType>: <first line of the message>"``, at most :data:`MAX_REASON_CHARS`.

    Example:
        >>> error_reason(TimeoutError("provider down\\nretry later"))
        'TimeoutError: provider down'
        >>> error_reason(MemoryError())
        'MemoryError'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    return reason


@dataclass(frozen=True)
class RerankOutcome(Generic[T]):
    """One adapter call: the items reranked, or kept in retrieval order (and why)."""

    ranked: list[tuple[T, RerankResult]] | None
    """``(item, result)`` pairs best first (or in ``reorder`` order); ``None``: not reranked."""
    unranked: list[T]
    """When not reranked: the first ``top_n`` items in retrieval order; else empty."""
    error: Exception | None = None
    """What the reranker raised, when the items fell back because of it."""

    @property
    def reranked(self) -> bool:
        return self.ranked is not None

    def unranked_metadata(self) -> dict[str, Any]:
        """The metadata added to each unranked item: ``{"reranked": False}``, plus
        ``"rerank_error"`` (a str, see :func:`error_reason`) after a reranker failure."""
        if self.error is None:
            return dict(NOT_RERANKED)
        return {**NOT_RERANKED, "rerank_error": error_reason(self.error)}


def _prepared(
    query: Any,
    items: Sequence[T],
    text: Callable[[T], str],
    settings: dict[str, Any],
    on_empty_query: EmptyQueryMode,
    on_reranker_error: Any,
) -> tuple[list[T], list[str], RerankOutcome[T] | None]:
    """The items, their texts, and the outcome when there is nothing to rerank (blank query).

    The caller's input is checked here, before the reranker runs: these errors always raise.
    """
    check_on_reranker_error(on_reranker_error)
    items = list(items)
    kept = unranked_fallback(query, items, top_n=settings["top_n"], on_empty_query=on_empty_query)
    if kept is not None:
        return items, [], RerankOutcome(None, kept)
    check_query(query)
    check_top_n(settings["top_n"])
    check_score_threshold(settings["score_threshold"])
    check_reorder(settings["reorder"])
    return items, check_documents([text(item) for item in items]), None


def _fallback(
    error: Exception,
    on_reranker_error: RerankerErrorMode,
    reranker: Reranker,
    items: list[T],
    top_n: int | None,
) -> RerankOutcome[T]:
    if on_reranker_error == "raise":
        raise error
    kept = items[:top_n]
    logger.warning(
        "%s raised %s: returning %d of %d documents in retrieval order, not reranked "
        "(metadata reranked=False, rerank_error; on_reranker_error='raise' raises instead)",
        type(reranker).__name__,
        type(error).__name__,
        len(kept),
        len(items),
    )
    return RerankOutcome(None, kept, error)


def _at(items: list[T], pairs: list[tuple[int, RerankResult]]) -> RerankOutcome[T]:
    return RerankOutcome([(items[i], result) for i, result in pairs], [])


def rerank_or_fallback(
    reranker: Reranker,
    query: str,
    items: Sequence[T],
    *,
    text: Callable[[T], str],
    top_n: int | None = None,
    score_threshold: float | None = None,
    reorder: ReorderMode = "none",
    on_empty_query: EmptyQueryMode = "retrieval_order",
    on_reranker_error: RerankerErrorMode = "fallback",
) -> RerankOutcome[T]:
    """:func:`rerank_items`, with the adapters' two fallbacks: an empty query and a failing
    reranker keep the items in retrieval order, cut to ``top_n`` (see the module docstring).

    Args:
        reranker, query, items, text, top_n, score_threshold, reorder: As
            :func:`rerank_items`.
        on_empty_query: See :data:`rerankkit.adapting.EmptyQueryMode`.
        on_reranker_error: See :data:`RerankerErrorMode`.

    Returns:
        A :class:`RerankOutcome`; ``error`` is set when the reranker raised.

    Raises:
        TypeError, ValueError: The caller's bad input (checked before the reranker runs), a
            blank query with ``on_empty_query="raise"``, a bad mode.
        Exception: Whatever the reranker raised, with ``on_reranker_error="raise"``.
    """
    settings: dict[str, Any] = {
        "top_n": top_n,
        "score_threshold": score_threshold,
        "reorder": reorder,
    }
    items, texts, blank = _prepared(query, items, text, settings, on_empty_query, on_reranker_error)
    if blank is not None:
        return blank
    try:
        pairs = rerank_items(reranker, query, range(len(texts)), text=texts.__getitem__, **settings)
    except Exception as error:  # not BaseException: KeyboardInterrupt, CancelledError pass
        return _fallback(error, on_reranker_error, reranker, items, top_n)
    return _at(items, pairs)


async def arerank_or_fallback(
    reranker: Reranker,
    query: str,
    items: Sequence[T],
    *,
    text: Callable[[T], str],
    top_n: int | None = None,
    score_threshold: float | None = None,
    reorder: ReorderMode = "none",
    on_empty_query: EmptyQueryMode = "retrieval_order",
    on_reranker_error: RerankerErrorMode = "fallback",
) -> RerankOutcome[T]:
    """Async :func:`rerank_or_fallback` through :func:`arerank_items` (never blocks the loop);
    cancelling the caller's task still cancels (``CancelledError`` is never a fallback).

    Example:
        >>> import asyncio
        >>> from rerankkit.testing import KeywordReranker
        >>> outcome = asyncio.run(arerank_or_fallback(KeywordReranker(), "cat", ["dog", "cat"],
        ...                                           text=str))
        >>> [(item, result.score) for item, result in outcome.ranked]
        [('cat', 1.0), ('dog', 0.0)]
    """
    settings: dict[str, Any] = {
        "top_n": top_n,
        "score_threshold": score_threshold,
        "reorder": reorder,
    }
    items, texts, blank = _prepared(query, items, text, settings, on_empty_query, on_reranker_error)
    if blank is not None:
        return blank
    try:
        pairs = await arerank_items(
            reranker, query, range(len(texts)), text=texts.__getitem__, **settings
        )
    except Exception as error:  # not BaseException: KeyboardInterrupt, CancelledError pass
        return _fallback(error, on_reranker_error, reranker, items, top_n)
    return _at(items, pairs)
