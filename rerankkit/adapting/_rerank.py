"""One adapter call: :func:`rerank_items` / :func:`arerank_items`.

The caller's items go in; each kept item comes back with the metadata to add to its NEW
framework object. The settings were checked when the adapter was built; a call checks only
what enters with it (the query and the items' texts), once, then runs the reranker's checked
inner path.

Two cases keep the items unranked rather than losing them: an empty or whitespace query
(nothing to rank by; ``on_empty_query="unranked"``), and a reranker that raises any
``Exception`` (``on_reranker_error="unranked"``): the first ``top_n`` items in retrieval order
come back marked ``{"reranked": False}`` (plus ``"rerank_error": "<ExceptionType>: <first
line>"``, at most :data:`MAX_REASON_CHARS` characters, after a failure), with one warning;
``score_threshold`` and ``reorder`` do not apply. ``"raise"`` raises instead. The caller's own
bad input (a non-``str`` query or text) always raises, before the reranker runs;
``KeyboardInterrupt`` and ``asyncio.CancelledError`` are never caught.

Example:
    >>> from rerankkit.adapting import RerankSettings
    >>> from rerankkit.testing import FunctionReranker
    >>> def broken(query, text):
    ...     raise RuntimeError("CUDA out of memory")
    >>> settings = RerankSettings(reranker=FunctionReranker(broken), top_n=2)
    >>> outcome = rerank_items(settings, "cat", ["a", "b", "c"], text=str)
    >>> outcome.reranked, [(kept.item, kept.metadata) for kept in outcome.kept][0]
    (False, ('a', {'reranked': False, 'rerank_error': 'RuntimeError: CUDA out of memory'}))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rerankkit._blank import is_blank
from rerankkit._ordering import BELOW_MIN_RELEVANCE_KEY
from rerankkit._result import RerankResult, result_metadata
from rerankkit._validation import check_documents, check_query
from rerankkit.compose._reorder import lost_in_the_middle

if TYPE_CHECKING:
    from rerankkit.adapting._settings import RerankSettings

T = TypeVar("T")

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 300
"""Longest ``rerank_error`` reason kept in metadata (the whole error goes to the tracing)."""


@dataclass(frozen=True)
class KeptItem(Generic[T]):
    """One item an adapter returns, as a new framework object built from these fields."""

    index: int
    """Its position in the caller's input."""
    item: T
    """The caller's object (never to be mutated)."""
    metadata: dict[str, Any]
    """What the new object's metadata adds: ``relevance_score`` and the backend's details, or
    ``reranked: False`` (and ``rerank_error``) when it was not reranked."""
    score: float | None
    """The rerank score (finite); ``None`` when not reranked."""
    text: str | None = None
    """The pruned text the new object carries (``RerankSettings.prune``); ``None``: the
    item's own."""


@dataclass(frozen=True)
class RerankOutcome(Generic[T]):
    """One adapter call: the kept items, best first (or in ``reorder`` order) when reranked,
    else the first ``top_n`` in retrieval order."""

    kept: list[KeptItem[T]]
    reranked: bool
    error: Exception | None = None
    """What the reranker raised, when the items came back unranked because of it."""
    abstained: bool = False
    """``min_relevance`` was set and no item reached it: ``kept`` is empty
    (``on_no_relevant="empty"``) or holds the best item, marked ``below_min_relevance``."""
    pruned: bool = False
    """Whether the items were pruned (``RerankSettings.prune``)."""
    prune_error: Exception | None = None
    """What the pruner raised, when the items came back unpruned because of it."""

    @property
    def failure(self) -> Exception | None:
        """The error a trace should report: the reranker's, else the pruner's."""
        return self.error or self.prune_error


def error_reason(error: BaseException) -> str:
    """``"<ExceptionType>: <first line of the message>"``, at most :data:`MAX_REASON_CHARS`.

    Example:
        >>> error_reason(TimeoutError("provider down\\nretry later")), error_reason(MemoryError())
        ('TimeoutError: provider down', 'MemoryError')
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    return reason


def warn_unranked(why: str, kept: int, total: int, setting: str) -> None:
    """The one warning of a call that returns its documents unranked."""
    logger.warning(
        "%s: returning %d of %d documents in retrieval order, not reranked "
        "(metadata reranked=False; %s='raise' raises instead)",
        why,
        kept,
        total,
        setting,
    )


def _unranked(
    settings: RerankSettings, items: Sequence[T], error: Exception | None = None
) -> RerankOutcome[T]:
    """The first ``top_n`` items in retrieval order, marked, after a blank query (no
    ``error``) or a failing reranker; one warning."""
    marker: dict[str, Any] = {"reranked": False}
    why, setting = "empty query", "on_empty_query"
    if error is not None:
        marker["rerank_error"] = error_reason(error)
        why = f"{type(settings.reranker).__name__} raised {type(error).__name__}"
        setting = "on_reranker_error"
    kept = [KeptItem(i, item, dict(marker), None) for i, item in enumerate(items[: settings.top_n])]
    warn_unranked(why, len(kept), len(items), setting)
    return RerankOutcome(kept, reranked=False, error=error)


def _prepare(
    settings: RerankSettings, query: Any, items: Sequence[T], text: Callable[[T], str]
) -> tuple[str, list[str]] | RerankOutcome[T]:
    """The checked query and texts, or the outcome of a blank query."""
    if isinstance(query, str) and is_blank(query) and settings.on_empty_query == "unranked":
        return _unranked(settings, items)
    return check_query(query), check_documents([text(item) for item in items])


def _ranked(
    settings: RerankSettings, items: Sequence[T], results: list[RerankResult]
) -> RerankOutcome[T]:
    abstained = (
        settings.min_relevance is not None
        and bool(items)
        and (not results or bool(results[0].details.get(BELOW_MIN_RELEVANCE_KEY)))
    )
    if abstained:
        logger.info(
            "no document of %d reaches min_relevance=%s (on_no_relevant=%r)",
            len(items),
            settings.min_relevance,
            settings.on_no_relevant,
        )
    if settings.reorder == "lost_in_the_middle":
        results = lost_in_the_middle(results)
    kept = [KeptItem(r.index, items[r.index], result_metadata(r), r.score) for r in results]
    return RerankOutcome(kept, reranked=True, abstained=abstained)


def rerank_items(
    settings: RerankSettings,
    query: Any,
    items: Sequence[T],
    *,
    text: Callable[[T], str],
    content: Callable[[T], str] | None = None,
) -> RerankOutcome[T]:
    """Rerank ``items`` by their text with ``settings`` (an adapter is its own settings).

    Semantics are :meth:`rerankkit.Reranker.rerank`'s (empty ``items`` give no kept items and
    no model call); ``reorder`` applies last; see the module docstring for the unranked cases.

    Args:
        settings: The reranker and the settings, checked when they were set.
        query: The search query.
        items: The caller's objects (documents, nodes, ...), already checked to be of the
            framework's type (:func:`rerankkit.adapting.check_items`).
        text: How to get the text the model reads from one item.
        content: With ``prune``: how to get the text the new object will carry (what is
            pruned; the kept spans are offsets into it); default ``text``.

    Raises:
        TypeError: ``query`` or a text is not a ``str`` (the position named ``documents[i]``).
        ValueError: A blank query with ``on_empty_query="raise"``.
        Exception: What the reranker raised, with ``on_reranker_error="raise"``.

    Example:
        >>> from rerankkit.adapting import RerankSettings
        >>> settings = RerankSettings(reranker="keyword:", top_n=2)
        >>> docs = [{"text": "a dog"}, {"text": "a cat"}, {"text": "cat cat"}]
        >>> outcome = rerank_items(settings, "cat", docs, text=lambda d: d["text"])
        >>> [(kept.index, kept.item["text"], kept.score) for kept in outcome.kept]
        [(2, 'cat cat', 2.0), (1, 'a cat', 1.0)]
    """
    prepared = _prepare(settings, query, items, text)
    if isinstance(prepared, RerankOutcome):
        return prepared
    try:
        results = settings.reranker._rerank_checked(
            *prepared, settings.top_n, settings.score_threshold, settings.relevance_cut
        )
    except Exception as error:  # not BaseException: KeyboardInterrupt, CancelledError pass
        if settings.on_reranker_error == "raise":
            raise
        return _unranked(settings, items, error)
    from rerankkit.adapting._pruning import prune_outcome  # the module imports this one

    return prune_outcome(settings, prepared[0], _ranked(settings, items, results), content or text)


async def arerank_items(
    settings: RerankSettings,
    query: Any,
    items: Sequence[T],
    *,
    text: Callable[[T], str],
    content: Callable[[T], str] | None = None,
) -> RerankOutcome[T]:
    """Async :func:`rerank_items`: model work runs off the event loop; cancelling the caller's
    task still cancels (``CancelledError`` is never caught).

    Example:
        >>> import asyncio
        >>> from rerankkit.adapting import RerankSettings
        >>> settings = RerankSettings(reranker="keyword:")
        >>> outcome = asyncio.run(arerank_items(settings, "cat", ["dog", "cat"], text=str))
        >>> [(kept.item, kept.score) for kept in outcome.kept]
        [('cat', 1.0), ('dog', 0.0)]
    """
    prepared = _prepare(settings, query, items, text)
    if isinstance(prepared, RerankOutcome):
        return prepared
    try:
        results = await settings.reranker._arerank_checked(
            *prepared, settings.top_n, settings.score_threshold, settings.relevance_cut
        )
    except Exception as error:  # not BaseException: KeyboardInterrupt, CancelledError pass
        if settings.on_reranker_error == "raise":
            raise
        return _unranked(settings, items, error)
    from rerankkit.adapting._pruning import aprune_outcome  # the module imports this one

    outcome = _ranked(settings, items, results)
    return await aprune_outcome(settings, prepared[0], outcome, content or text)
