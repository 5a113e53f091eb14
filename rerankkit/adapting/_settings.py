"""The settings every adapter holds, checked once: the reranker, ``top_n``,
``score_threshold`` and ``reorder`` (:func:`rerank_fields`).

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> rerank_fields(KeywordReranker(), top_n=2)
    {'reranker': KeywordReranker(), 'top_n': 2, 'score_threshold': None, 'reorder': 'none'}
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

from rerankkit._base import Reranker
from rerankkit._specs import build_reranker, spec_kinds
from rerankkit._validation import check_score_threshold, check_top_n
from rerankkit.adapting._items import ReorderMode, check_reorder

__all__ = ["RerankFields", "as_reranker", "rerank_fields"]


class RerankFields(TypedDict):
    """Keyword arguments for an adapter's constructor (``RerankKitCompressor(**fields)``)."""

    reranker: Reranker
    """The backend."""
    top_n: int | None
    """Keep at most this many (``None`` keeps all)."""
    score_threshold: float | None
    """Keep only ``score >= score_threshold`` (before ``top_n``)."""
    reorder: ReorderMode
    """Final ordering of the kept results."""


def as_reranker(reranker: Reranker | str | os.PathLike[str]) -> Reranker:
    """A ``Reranker`` as given, built from a spec string, or a ``CrossEncoderReranker`` built
    from a model name or path.

    Args:
        reranker: A :class:`rerankkit.Reranker`; a spec string (``"cross-encoder:PATH?..."``,
            ``"keyword:"``: a ``str`` whose text before the first ``:`` is one of
            :func:`rerankkit._specs.spec_kinds`, as the adapters' ``model_dump`` / ``to_dict``
            write it); or a Hugging Face hub id / local folder (``str`` or path) of a
            cross-encoder. A model is loaded once, here.

    Raises:
        TypeError: ``reranker`` is neither.
        ValueError: ``reranker`` is an empty string, or ``KIND:...`` (not a folder) with an
            unknown kind (the known ones listed).

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
        kind, colon, _ = reranker.partition(":")
        # A hub id never holds ":", so "KIND:..." that is no folder is a spec, and a misspelt
        # kind gets the spec error listing the kinds rather than a failed hub lookup
        # (C:\models has a one-letter drive, not a kind).
        if kind in spec_kinds() or (colon and len(kind) > 1 and not os.path.exists(reranker)):
            return build_reranker(reranker)
        from rerankkit import CrossEncoderReranker  # imports torch: only when asked for

        return CrossEncoderReranker(reranker)
    raise TypeError(
        "reranker must be a rerankkit.Reranker or a cross-encoder model name or path (str), "
        f"got {type(reranker).__name__}"
    )


def rerank_fields(
    reranker: Reranker | str | os.PathLike[str],
    *,
    top_n: Any = 3,
    score_threshold: Any = None,
    reorder: Any = "none",
) -> RerankFields:
    """Check an adapter's settings and return them as constructor keyword arguments.

    The settings are checked before ``reranker`` is built from a name, so a bad ``top_n``
    never costs a model load.

    Args:
        reranker: As :func:`as_reranker`.
        top_n: ``None`` or an int ``>= 1``.
        score_threshold: ``None`` or a number (not NaN).
        reorder: One of :data:`REORDER_MODES`.

    Returns:
        ``{"reranker", "top_n", "score_threshold", "reorder"}``, checked.

    Raises:
        TypeError, ValueError: A setting is of the wrong type or out of range (named).

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> rerank_fields(KeywordReranker(), top_n=0)
        Traceback (most recent call last):
        ValueError: top_n must be >= 1, got 0
    """
    top_n = check_top_n(top_n)
    score_threshold = check_score_threshold(score_threshold)
    reorder = check_reorder(reorder)
    return RerankFields(
        reranker=as_reranker(reranker),
        top_n=top_n,
        score_threshold=score_threshold,
        reorder=reorder,
    )
