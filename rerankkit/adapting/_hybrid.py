"""The framework-free half of the hybrid stack (first-stage retrievers -> RRF -> reranker ->
optional LLM reranker): the fusion settings, checked once (:func:`fusion_fields`), fusing
framework objects by identity (:func:`fuse_items`) and the reranking stages as adapter
settings (:func:`hybrid_fields`).

Example:
    >>> bm25 = [{"id": "a"}, {"id": "b"}]
    >>> dense = [{"id": "b"}, {"id": "c"}]
    >>> fused = fuse_items([bm25, dense], key=lambda d: d["id"], k=1)
    >>> [(item["id"], round(score, 3)) for item, score in fused]
    [('b', 0.833), ('a', 0.5), ('c', 0.333)]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar

from rerankkit._base import Reranker
from rerankkit._validation import check_int, check_number, check_top_n, check_weights
from rerankkit.adapting._items import ReorderMode
from rerankkit.adapting._settings import RerankFields, as_reranker, rerank_fields
from rerankkit.compose._cascade import rerank_stages
from rerankkit.compose._fusion import reciprocal_rank_fusion
from rerankkit.llm._factory import llm_reranker as llm_reranker_for
from rerankkit.llm._protocol import CompletionLLM

T = TypeVar("T")

__all__ = [
    "FusionFields",
    "StageOptions",
    "fuse_items",
    "fusion_fields",
    "hybrid_fields",
    "llm_stage",
]


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

    One rule for both frameworks: ``k`` is a finite number ``>= 0`` (RRF's constant; a string
    such as ``"60"`` is refused, not coerced), ``weights`` one finite number ``>= 0`` per
    retriever, not all zero (``None``: equal), ``top_n`` an int ``>= 1`` or ``None`` (keep
    every fused document). Call it where the caller's arguments arrive, before any model
    is loaded, so a mistake fails at construction.

    Args:
        retrievers: How many first-stage retrievers are fused (one weight each).
        k: RRF constant.
        weights: One weight per retriever, or ``None``.
        top_n: How many fused documents to keep, or ``None``.
        names: The caller's name for a setting when it is not ``"k"``, ``"weights"`` or
            ``"fusion_top_n"`` (the hybrid helpers' names), so errors name what the caller
            passed: ``{"weights": "retriever_weights", "top_n": "similarity_top_k"}``.

    Returns:
        :class:`FusionFields`: ``k`` as a float, ``weights`` as a new list of floats (or
        ``None``), ``top_n``.

    Raises:
        TypeError, ValueError: A bad setting, named as the caller named it.

    Example:
        >>> fusion_fields(2, weights=[1, 3], top_n=None)
        {'k': 60.0, 'weights': [1.0, 3.0], 'top_n': None}
        >>> fusion_fields(2, k="60")
        Traceback (most recent call last):
        TypeError: k must be a number, got str
        >>> fusion_fields(1, top_n=0, names={"top_n": "similarity_top_k"})
        Traceback (most recent call last):
        ValueError: similarity_top_k must be >= 1, got 0
        >>> fusion_fields(2, weights=[1])
        Traceback (most recent call last):
        ValueError: weights has 1 entries for 2 retrievers
    """
    named = {"k": "k", "weights": "weights", "top_n": "fusion_top_n", **(names or {})}
    return {
        "k": check_number(k, named["k"], minimum=0),
        "weights": check_weights(weights, retrievers, argument=named["weights"], of="retrievers"),
        "top_n": check_int(top_n, named["top_n"], minimum=1, optional=True),
    }


class StageOptions(TypedDict, total=False):
    """The reranking stages of a hybrid stack, as keyword arguments (all optional).

    The adapters' ``hybrid_*`` helpers take these as ``**stages`` and pass them to
    :func:`hybrid_fields`, which holds the defaults.
    """

    rerank_top_n: int | None
    """Documents the first reranker keeps (default 10; ``None`` keeps all)."""
    llm_reranker: Any
    """Optional last stage run on the first's survivors: a rerankkit ``Reranker`` (an
    ``LLMListwiseReranker``, ...) or an LLM (a rerankkit LLM here; the adapters also take
    their framework's chat model / LLM), which ranks listwise (RankGPT windows)."""
    llm_top_n: int | None
    """Documents the LLM stage keeps (default 3; ignored without ``llm_reranker``)."""
    score_threshold: float | None
    """Minimum last-stage score (default none)."""
    reorder: ReorderMode
    """Final ordering, see :data:`rerankkit.adapting.ReorderMode` (default ``"none"``)."""


def hybrid_fields(
    reranker: Reranker | str | os.PathLike[str],
    *,
    rerank_top_n: int | None = 10,
    llm_reranker: Reranker | CompletionLLM | None = None,
    llm_top_n: int | None = 3,
    score_threshold: float | None = None,
    reorder: ReorderMode = "none",
) -> RerankFields:
    """The reranking stages as one adapter's settings.

    ``reranker`` keeps ``rerank_top_n``; with ``llm_reranker``, that LLM reranks those and
    keeps ``llm_top_n`` (a :class:`rerankkit.CascadeReranker`, whose results carry
    ``stage_scores``). ``score_threshold`` applies to the last stage's score.

    Args:
        reranker: A :class:`rerankkit.Reranker` or a cross-encoder name / path.
        rerank_top_n: See :class:`StageOptions`.
        llm_reranker: See :class:`StageOptions` (see :func:`llm_stage`).
        llm_top_n: See :class:`StageOptions`.
        score_threshold: See :class:`StageOptions`.
        reorder: See :class:`StageOptions`.

    Returns:
        :class:`~rerankkit.adapting.RerankFields` for ``Adapter(**fields)``.

    Raises:
        TypeError, ValueError: A bad count, threshold, ordering or reranker (named); counts
            are checked before a model is loaded from a name.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> fields = hybrid_fields(KeywordReranker(), llm_reranker=KeywordReranker())
        >>> type(fields["reranker"]).__name__, fields["top_n"]
        ('CascadeReranker', 3)
        >>> hybrid_fields(KeywordReranker(), rerank_top_n=0)
        Traceback (most recent call last):
        ValueError: rerank_top_n must be >= 1, got 0
    """
    rerank_top_n = check_int(rerank_top_n, "rerank_top_n", minimum=1, optional=True)
    llm_top_n = check_int(llm_top_n, "llm_top_n", minimum=1, optional=True)
    stages, top_n = rerank_stages(
        as_reranker(reranker),
        rerank_top_n,
        llm_reranker=llm_stage(llm_reranker),
        llm_top_n=llm_top_n,
    )
    return rerank_fields(stages, top_n=top_n, score_threshold=score_threshold, reorder=reorder)


def llm_stage(llm_reranker: Any) -> Reranker | None:
    """The LLM stage of a hybrid stack: a ``Reranker`` as given, an LLM as a listwise reranker.

    Raises:
        TypeError: Neither (named ``llm_reranker``); an adapter converts its framework's
            model with its ``as_rerankkit_llm`` before calling this.

    Example:
        >>> from rerankkit.testing import ScriptedLLM
        >>> type(llm_stage(ScriptedLLM(["[1]"]))).__name__
        'LLMListwiseReranker'
        >>> llm_stage("gpt-4o")
        Traceback (most recent call last):
        TypeError: llm_reranker must be a rerankkit Reranker or an LLM (complete(prompt)), got str
    """
    if llm_reranker is None or isinstance(llm_reranker, Reranker):
        return llm_reranker
    if isinstance(llm_reranker, CompletionLLM):
        return llm_reranker_for(llm_reranker, "listwise")
    raise TypeError(
        "llm_reranker must be a rerankkit Reranker or an LLM (complete(prompt)), got "
        f"{type(llm_reranker).__name__}"
    )


def fuse_items(
    ranked_lists: Iterable[Sequence[T]],
    *,
    key: Callable[[T], Hashable],
    k: float = 60,
    weights: Sequence[float] | None = None,
    top_n: int | None = None,
) -> list[tuple[T, float]]:
    """Reciprocal rank fusion of lists of framework objects (documents, nodes, ...).

    Objects are the same document when ``key`` says so (a text, an id, a content hash);
    one that a list returns twice counts once, at its better (earlier) rank, and the first
    object met for a key, reading the lists in turn, stands for it in the result. The
    arithmetic is :func:`rerankkit.reciprocal_rank_fusion`'s.

    Args:
        ranked_lists: One list per retriever (or per query and retriever), best first.
        key: The identity of an object; must be hashable.
        k: RRF constant (``>= 0``).
        weights: One non-negative weight per list (default: all 1).
        top_n: Keep at most this many (``None`` keeps all).

    Returns:
        ``(object, fused_score)`` pairs, best first; ties keep first-met order. The objects
        are the callers', unchanged.

    Raises:
        TypeError, ValueError: A bad ``k``, ``weights`` or ``top_n`` (named).

    Example:
        >>> fused = fuse_items([["cat", "dog", "cat"], ["dog"]], key=str, k=0, top_n=1)
        >>> fused
        [('dog', 1.5)]
    """
    top_n = check_top_n(top_n)
    rankings: list[list[Hashable]] = []
    first_seen: dict[Hashable, T] = {}
    for items in ranked_lists:
        ranking: dict[Hashable, None] = {}
        for item in items:
            identity = key(item)
            ranking.setdefault(identity, None)  # a repeat keeps its better (earlier) rank
            first_seen.setdefault(identity, item)
        rankings.append(list(ranking))
    fused = list(reciprocal_rank_fusion(rankings, k=k, weights=weights).items())
    return [(first_seen[identity], score) for identity, score in fused[:top_n]]
