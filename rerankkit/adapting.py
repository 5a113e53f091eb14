"""Building blocks for framework adapters: LangChain, LlamaIndex, or your own.

An adapter converts types and nothing else. It checks that the framework objects it was
given are the right kind, pulls a text out of each, calls :func:`rerank_items` (or
:func:`arerank_items`), and turns every ``(item, RerankResult)`` pair back into a NEW
framework object carrying :func:`rerankkit.result_metadata`. Ordering, ``top_n``,
``score_threshold``, validation, empty input and the optional final reordering all happen
here and in :class:`rerankkit.Reranker`, once, so every adapter behaves the same.

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> docs = [{"text": "a dog"}, {"text": "a cat"}, {"text": "cat cat"}]
    >>> ranked = rerank_items(KeywordReranker(), "cat", docs, text=lambda d: d["text"], top_n=2)
    >>> [(item["text"], result.score) for item, result in ranked]
    [('cat cat', 2.0), ('a cat', 1.0)]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, get_args

from rerankkit._base import Reranker
from rerankkit._result import RerankResult
from rerankkit._validation import check_score_threshold, check_sequence, check_top_n
from rerankkit.compose.reorder import lost_in_the_middle

T = TypeVar("T")

ReorderMode = Literal["none", "lost_in_the_middle"]
"""Final ordering of the kept results: ``"none"`` keeps best-first; ``"lost_in_the_middle"``
puts the best at both edges of the context and the weakest in the middle (for long prompts)."""

REORDER_MODES: tuple[str, ...] = get_args(ReorderMode)

__all__ = [
    "REORDER_MODES",
    "ReorderMode",
    "arerank_items",
    "as_reranker",
    "check_items",
    "check_reorder",
    "check_score_threshold",
    "check_top_n",
    "reorder_results",
    "rerank_items",
]


def as_reranker(reranker: Reranker | str | os.PathLike[str]) -> Reranker:
    """A ``Reranker`` as given, or a ``CrossEncoderReranker`` built from a model name or path.

    Args:
        reranker: A :class:`rerankkit.Reranker`, or a Hugging Face hub id / local folder
            (``str`` or path) of a cross-encoder, loaded once, here.

    Raises:
        TypeError: ``reranker`` is neither.
        ValueError: ``reranker`` is an empty string.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> as_reranker(KeywordReranker())
        KeywordReranker()
        >>> as_reranker(42)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: reranker must be a rerankkit.Reranker or ... (str), got int
    """
    if isinstance(reranker, Reranker):
        return reranker
    if isinstance(reranker, os.PathLike):
        reranker = os.fspath(reranker)
    if isinstance(reranker, str):
        if not reranker.strip():
            raise ValueError("reranker model name or path must be a non-empty string")
        from rerankkit import CrossEncoderReranker  # imports torch: only when asked for

        return CrossEncoderReranker(reranker)
    raise TypeError(
        "reranker must be a rerankkit.Reranker or a cross-encoder model name or path (str), "
        f"got {type(reranker).__name__}"
    )


def check_reorder(reorder: Any) -> ReorderMode:
    """Return ``reorder`` if it is one of :data:`REORDER_MODES`, else raise ValueError.

    Example:
        >>> check_reorder("lost_in_the_middle")
        'lost_in_the_middle'
    """
    if not isinstance(reorder, str) or reorder not in REORDER_MODES:
        raise ValueError(f"reorder must be one of {list(REORDER_MODES)}, got {reorder!r}")
    return reorder  # type: ignore[return-value]


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

    Example:
        >>> check_items(["a", 2], str, "names")
        Traceback (most recent call last):
        TypeError: names[1] must be a str, got int
    """
    return check_sequence(items, expected, argument)


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

    Example:
        >>> from rerankkit.testing import FixedScoreReranker
        >>> pairs = rerank_items(FixedScoreReranker([0.1, 0.7]), "q", ["x", "y"], text=str)
        >>> [(item, result.score) for item, result in pairs]
        [('y', 0.7), ('x', 0.1)]
    """
    reorder = check_reorder(reorder)  # before any model work
    items = list(items)
    results = reranker.rerank(
        query, [text(item) for item in items], top_n=top_n, score_threshold=score_threshold
    )
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
    """Async :func:`rerank_items` through :meth:`Reranker.arerank` (never blocks the loop)."""
    reorder = check_reorder(reorder)
    items = list(items)
    results = await reranker.arerank(
        query, [text(item) for item in items], top_n=top_n, score_threshold=score_threshold
    )
    return _pair(items, results, reorder)
