"""The one result type every backend returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One reranked document: where it was in the caller's input and how relevant it is.

    Attributes:
        index: Position of the document in the caller's input sequence.
        score: Relevance score, higher is more relevant; always a plain Python ``float``.
        details: Backend extras that adapters copy into metadata (a cascade's per-stage
            scores, a long document's best chunk span, ...). Empty for most backends and
            ignored by equality.

    Example:
        >>> RerankResult(index=2, score=0.93)
        RerankResult(index=2, score=0.93)
    """

    index: int
    score: float
    details: Mapping[str, Any] = field(
        default_factory=lambda: _NO_DETAILS, compare=False, hash=False, repr=False
    )


def result_metadata(result: RerankResult) -> dict[str, Any]:
    """The metadata entries an adapter adds to a reranked document.

    ``relevance_score`` always; each backend detail under its own key.

    Example:
        >>> result_metadata(RerankResult(0, 0.5))
        {'relevance_score': 0.5}
    """
    return {"relevance_score": result.score, **result.details}
