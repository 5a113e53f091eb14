"""The framework-free half of the hybrid stack (first-stage retrievers -> RRF -> reranker ->
optional LLM reranker): the fusion settings, checked once where they enter
(:func:`fusion_fields`), and fusing framework objects by identity (:func:`fuse_items`). The
reranking stages are :meth:`rerankkit.adapting.RerankSettings.from_stages`.

Example:
    >>> bm25 = [{"id": "a"}, {"id": "b"}]
    >>> dense = [{"id": "b"}, {"id": "c"}]
    >>> fused = fuse_items([bm25, dense], key=lambda d: d["id"], **fusion_fields(2, k=1))
    >>> [(item["id"], round(score, 3)) for item, score in fused]
    [('b', 0.833), ('a', 0.5), ('c', 0.333)]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar

from rerankkit._validation import check_number, check_top_n, check_weights
from rerankkit.adapting._settings import ReorderMode
from rerankkit.compose._fusion import fuse_ids

T = TypeVar("T")


class FusionFields(TypedDict):
    """The fusion settings of a hybrid stack, checked (see :func:`fusion_fields`)."""

    k: float
    """RRF constant, ``>= 0``."""
    weights: list[float] | None
    """One weight per retriever, ``>= 0`` and not all zero; ``None``: all equal."""
    top_n: int | None
    """Fused documents kept, ``>= 1``; ``None`` keeps all."""


def fusion_fields(
    retrievers: int,
    *,
    k: Any = 60,
    weights: Any = None,
    top_n: Any = 100,
    names: Mapping[str, str] | None = None,
) -> FusionFields:
    """The RRF settings of a hybrid stack, checked once, for every adapter alike.

    ``k`` is a finite number ``>= 0`` (RRF's constant; a string such as ``"60"`` is refused,
    not coerced), ``weights`` one finite number ``>= 0`` per retriever, not all zero (``None``:
    equal), ``top_n`` an int ``>= 1`` or ``None`` (keep every fused document). Call it where the
    caller's arguments arrive, before any model is loaded.

    Args:
        retrievers: How many first-stage retrievers are fused (one weight each).
        k: RRF constant.
        weights: One weight per retriever, or ``None``.
        top_n: How many fused documents to keep, or ``None``.
        names: The caller's name for a setting when it is not ``"k"``, ``"weights"`` or
            ``"fusion_top_n"`` (the hybrid helpers' names), so errors name what the caller
            passed: ``{"weights": "retriever_weights", "top_n": "similarity_top_k"}``.

    Raises:
        TypeError, ValueError: A bad setting, named as the caller named it.

    Example:
        >>> fusion_fields(2, weights=[1, 3], top_n=None)
        {'k': 60.0, 'weights': [1.0, 3.0], 'top_n': None}
        >>> fusion_fields(1, top_n=0, names={"top_n": "similarity_top_k"})
        Traceback (most recent call last):
        ValueError: similarity_top_k must be >= 1, got 0
    """
    named = {"k": "k", "weights": "weights", "top_n": "fusion_top_n", **(names or {})}
    return {
        "k": check_number(k, named["k"], minimum=0),
        "weights": check_weights(weights, retrievers, argument=named["weights"], of="retrievers"),
        "top_n": check_top_n(top_n, named["top_n"]),
    }


class StageOptions(TypedDict, total=False):
    """The reranking stages of a hybrid stack, as keyword arguments (all optional); the
    adapters' ``hybrid_*`` helpers pass them to ``RerankSettings.from_stages``."""

    rerank_top_n: int | None
    """Documents the first reranker keeps (default 10; ``None`` keeps all)."""
    llm_reranker: Any
    """Optional last stage run on the first's survivors: a rerankkit ``Reranker`` or an LLM
    (a rerankkit LLM; the adapters also take their framework's chat model / LLM), which ranks
    listwise (RankGPT windows)."""
    llm_top_n: int | None
    """Documents the LLM stage keeps (default 3; ignored without ``llm_reranker``)."""
    score_threshold: float | None
    """Minimum last-stage score (default none)."""
    reorder: ReorderMode
    """Final ordering (default ``"none"``; ``"lost_in_the_middle"``)."""
    prune: Any
    """Prune the survivors to the sentences that answer (``True``: with the first
    reranker, even after an LLM stage; or a ``rerankkit.ContextPruner``); default ``False``."""
    budget_tokens: int | None
    """With ``prune``: total tokens of the returned documents (default: adaptive)."""


def fuse_items(
    ranked_lists: Iterable[Sequence[T]],
    *,
    key: Callable[[T], Hashable],
    k: float,
    weights: Sequence[float] | None,
    top_n: int | None,
) -> list[tuple[T, float]]:
    """Reciprocal rank fusion of lists of framework objects (documents, nodes, ...).

    Objects are the same document when ``key`` says so (a text, an id, a content hash); one
    that a list returns twice counts once, at its better (earlier) rank, and the first object
    met for a key, reading the lists in turn, stands for it. The arithmetic is
    :func:`rerankkit.reciprocal_rank_fusion`'s. ``k``, ``weights`` (one per list; ``None``:
    all 1) and ``top_n`` are trusted: check them once with :func:`fusion_fields` where they
    enter (a retriever's constructor), not at every query.

    Returns:
        ``(object, fused_score)`` pairs, best first; ties keep first-met order. The objects
        are the callers', unchanged.

    Example:
        >>> fuse_items([["cat", "dog", "cat"], ["dog"]], key=str, k=0, weights=None, top_n=1)
        [('dog', 1.5)]
    """
    rankings: list[list[Hashable]] = []
    first_seen: dict[Hashable, T] = {}
    for items in ranked_lists:
        ranking: dict[Hashable, None] = {}
        for item in items:
            identity = key(item)
            ranking.setdefault(identity, None)  # a repeat keeps its better (earlier) rank
            first_seen.setdefault(identity, item)
        rankings.append(list(ranking))
    fused = fuse_ids(rankings, k, weights or [1.0] * len(rankings))
    return [(first_seen[identity], score) for identity, score in list(fused.items())[:top_n]]
