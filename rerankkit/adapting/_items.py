"""Rerank framework objects by their text: :func:`rerank_items`, :func:`arerank_items`, and the
final ordering of the kept results (:data:`ReorderMode`).

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> docs = [{"text": "a dog"}, {"text": "a cat"}, {"text": "cat cat"}]
    >>> ranked = rerank_items(KeywordReranker(), "cat", docs, text=lambda d: d["text"], top_n=2)
    >>> [(item["text"], result.score) for item, result in ranked]
    [('cat cat', 2.0), ('a cat', 1.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, cast, get_args

from rerankkit._base import Reranker
from rerankkit._result import RerankResult
from rerankkit._validation import check_choice, check_sequence
from rerankkit.compose._reorder import lost_in_the_middle

T = TypeVar("T")

ReorderMode = Literal["none", "lost_in_the_middle"]
"""Final ordering of the kept results: ``"none"`` keeps best-first; ``"lost_in_the_middle"``
puts the best at both edges of the context and the weakest in the middle (for long prompts)."""

REORDER_MODES: tuple[str, ...] = get_args(ReorderMode)

__all__ = [
    "REORDER_MODES",
    "ReorderMode",
    "arerank_items",
    "check_items",
    "check_reorder",
    "reorder_results",
    "rerank_items",
]


def check_reorder(reorder: Any) -> ReorderMode:
    """Return ``reorder`` if it is one of :data:`REORDER_MODES`.

    Raises:
        ValueError: Anything else, naming ``reorder`` and the choices.

    Example:
        >>> check_reorder("lost_in_the_middle")
        'lost_in_the_middle'
        >>> check_reorder("best_last")
        Traceback (most recent call last):
        ValueError: reorder must be one of ['none', 'lost_in_the_middle'], got 'best_last'
    """
    return cast(ReorderMode, check_choice(reorder, "reorder", REORDER_MODES))


def reorder_results(results: Sequence[RerankResult], reorder: ReorderMode) -> list[RerankResult]:
    """Apply the final ordering to best-first ``results`` (after the ``top_n`` cut).

    Example:
        >>> ranked = [RerankResult(i, s) for i, s in [(3, 0.9), (0, 0.8), (2, 0.7), (1, 0.6)]]
        >>> [r.index for r in reorder_results(ranked, "lost_in_the_middle")]
        [3, 2, 1, 0]
    """
    if check_reorder(reorder) == "lost_in_the_middle":
        return lost_in_the_middle(results)
    return list(results)


def check_items(items: Any, expected: type[T], argument: str) -> list[T]:
    """A new list of ``items``, each an instance of ``expected``; errors name the position.

    Raises:
        TypeError: ``items`` is not a sequence, or one item is not an ``expected``.

    Example:
        >>> check_items(["a", 2], str, "names")
        Traceback (most recent call last):
        TypeError: names[1] must be a str, got int
    """
    return check_sequence(items, expected, argument)


def _prepare(
    items: Sequence[T], text: Callable[[T], str], reorder: Any
) -> tuple[list[T], list[str], ReorderMode]:
    reorder = check_reorder(reorder)  # before any model work
    items = list(items)
    return items, [text(item) for item in items], reorder


def _pair(
    items: list[T], results: list[RerankResult], reorder: ReorderMode
) -> list[tuple[T, RerankResult]]:
    return [(items[result.index], result) for result in reorder_results(results, reorder)]


def rerank_items(
    reranker: Reranker,
    query: str,
    items: Sequence[T],
    *,
    text: Callable[[T], str],
    top_n: int | None = None,
    score_threshold: float | None = None,
    reorder: ReorderMode = "none",
) -> list[tuple[T, RerankResult]]:
    """Rerank arbitrary objects by their text; each kept item comes back with its result.

    Semantics are exactly :meth:`Reranker.rerank`'s (empty ``items`` gives ``[]`` without a
    model call); ``reorder`` is applied last, to the kept results.

    Args:
        reranker: The backend.
        query: The search query.
        items: Objects to rank (documents, nodes, ...); returned objects are these, unchanged.
        text: How to get the text the model reads from one item.
        top_n: Keep at most this many (``None`` keeps all).
        score_threshold: Keep only ``score >= score_threshold`` (before ``top_n``).
        reorder: Final ordering, see :data:`ReorderMode`.

    Returns:
        ``(item, RerankResult)`` pairs, best first (or in ``reorder`` order).

    Raises:
        ValueError, TypeError: As :meth:`Reranker.rerank`, and for an unknown ``reorder``.

    Example:
        >>> from rerankkit.testing import FixedScoreReranker
        >>> pairs = rerank_items(FixedScoreReranker([0.1, 0.7]), "q", ["x", "y"], text=str)
        >>> [(item, result.score) for item, result in pairs]
        [('y', 0.7), ('x', 0.1)]
    """
    items, texts, reorder = _prepare(items, text, reorder)
    results = reranker.rerank(query, texts, top_n=top_n, score_threshold=score_threshold)
    return _pair(items, results, reorder)


async def arerank_items(
    reranker: Reranker,
    query: str,
    items: Sequence[T],
    *,
    text: Callable[[T], str],
    top_n: int | None = None,
    score_threshold: float | None = None,
    reorder: ReorderMode = "none",
) -> list[tuple[T, RerankResult]]:
    """Async :func:`rerank_items` through :meth:`Reranker.arerank` (never blocks the loop).

    Example:
        >>> import asyncio
        >>> from rerankkit.testing import FixedScoreReranker
        >>> pairs = asyncio.run(arerank_items(FixedScoreReranker([0.1, 0.7]), "q", "xy", text=str))
        >>> [(item, result.score) for item, result in pairs]
        [('y', 0.7), ('x', 0.1)]
    """
    items, texts, reorder = _prepare(items, text, reorder)
    results = await reranker.arerank(query, texts, top_n=top_n, score_threshold=score_threshold)
    return _pair(items, results, reorder)
