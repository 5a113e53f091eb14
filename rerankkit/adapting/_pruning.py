"""The context step of an adapter call: prune the reranked items (``RerankSettings.prune``).

Runs after reranking, on the kept items only, with one batched scoring call. The items'
text for pruning is their own content (``content``), so the kept spans are offsets into what
the new framework object carries. A pruner that raises never loses the reranked items: they
come back unpruned, marked ``pruned: False`` and ``prune_error``, with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from rerankkit.adapting._rerank import KeptItem, RerankOutcome, error_reason
from rerankkit.context import ContextPruner, PrunedDocument

if TYPE_CHECKING:
    from rerankkit.adapting._settings import RerankSettings

T = TypeVar("T")

logger = logging.getLogger(__name__)


def _texts(outcome: RerankOutcome[T], content: Callable[[T], str]) -> list[str]:
    return [content(kept.item) for kept in outcome.kept]


def _applied(outcome: RerankOutcome[T], pruned: Sequence[PrunedDocument]) -> RerankOutcome[T]:
    by_position = {p.index: p for p in pruned}
    kept: list[KeptItem[T]] = []
    for position, item in enumerate(outcome.kept):
        if position not in by_position:
            continue
        p = by_position[position]
        added: dict[str, Any] = {
            "kept_spans": [list(span) for span in p.spans],
            "original_tokens": p.original_tokens,
            "kept_tokens": p.tokens,
        }
        kept.append(replace(item, metadata={**item.metadata, **added}, text=p.text))
    if len(kept) < len(outcome.kept):
        logger.debug("pruning left out %d documents", len(outcome.kept) - len(kept))
    return replace(outcome, kept=kept, pruned=True)


def _unpruned(
    settings: RerankSettings, outcome: RerankOutcome[T], error: Exception
) -> RerankOutcome[T]:
    logger.warning(
        "%s raised %s while pruning: returning the %d reranked documents unpruned "
        "(metadata pruned=False)",
        type(settings.pruner()).__name__,
        type(error).__name__,
        len(outcome.kept),
    )
    marker = {"pruned": False, "prune_error": error_reason(error)}
    kept = [replace(item, metadata={**item.metadata, **marker}) for item in outcome.kept]
    return replace(outcome, kept=kept, prune_error=error)


def _wanted(settings: RerankSettings, outcome: RerankOutcome[T]) -> ContextPruner | None:
    return settings.pruner() if outcome.reranked and outcome.kept else None


def prune_outcome(
    settings: RerankSettings, query: str, outcome: RerankOutcome[T], content: Callable[[T], str]
) -> RerankOutcome[T]:
    """``outcome`` with its kept items pruned (see the module docstring); unchanged without
    ``prune``, or when the items were not reranked (a blank query, a failing reranker).

    Example:
        >>> from rerankkit.adapting import RerankSettings, rerank_items
        >>> settings = RerankSettings(reranker="keyword:", prune=True, top_n=1)
        >>> outcome = rerank_items(settings, "cats", ["Dogs bark. Cats purr.", "Dogs."], text=str)
        >>> [(kept.text, kept.metadata["kept_spans"]) for kept in outcome.kept]
        [('Cats purr.', [[11, 21]])]
    """
    pruner = _wanted(settings, outcome)
    if pruner is None:
        return outcome
    try:
        pruned = pruner.prune(query, _texts(outcome, content), budget_tokens=settings.budget_tokens)
    except Exception as error:  # not BaseException: KeyboardInterrupt, CancelledError pass
        return _unpruned(settings, outcome, error)
    return _applied(outcome, pruned)


async def aprune_outcome(
    settings: RerankSettings, query: str, outcome: RerankOutcome[T], content: Callable[[T], str]
) -> RerankOutcome[T]:
    """Async :func:`prune_outcome` (the pruner's ``aprune``)."""
    pruner = _wanted(settings, outcome)
    if pruner is None:
        return outcome
    try:
        pruned = await pruner.aprune(
            query, _texts(outcome, content), budget_tokens=settings.budget_tokens
        )
    except Exception as error:  # not BaseException: KeyboardInterrupt, CancelledError pass
        return _unpruned(settings, outcome, error)
    return _applied(outcome, pruned)
