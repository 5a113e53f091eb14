"""The one result type every backend returns, and the keys that flag unscored documents.

Every score a user receives is a finite ``float`` in ``[LOWEST_SCORE, HIGHEST_SCORE]``, so
``json.dumps(..., allow_nan=False)`` always works. A document the model did not judge is kept
and ranks after every judged document; ``score()`` gives it ``LOWEST_SCORE``, and a
``RerankResult`` the lowest judged score of the same call (``0.0`` when none was judged: see
``_ordering.floored``), so means and dashboards of ``relevance_score`` stay in the model's
range. Its ``details`` say why:

* ``FAILED_KEY`` (``"rerank_failed"``): ``True`` when scoring it failed (an LLM call that
  failed after retries or gave an unparseable answer, a NaN from a model, a failed stage of a
  fusion); ``ERROR_KEY`` (``"rerank_error"``) then holds a short reason such as
  ``"TimeoutError: slow"``. A genuinely irrelevant document has neither key.
* ``EMPTY_KEY`` (``"empty_document"``): ``True`` when its text was empty or whitespace; it
  was never sent to a model.

A pointwise LLM reranker built with an explicit ``failure_score`` gives its failed documents
that score instead of ``LOWEST_SCORE`` (still flagged), so they rank by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})

LOWEST_SCORE: float = -1e30
"""The score of a document that was not judged (failed or empty), and the floor of every
score. Finite, so JSON-strict, and still finite in float32 (unlike ``-sys.float_info.max``)."""
HIGHEST_SCORE: float = 1e30
"""The ceiling of every score (a backend's ``+inf`` becomes this)."""
FAILED_KEY = "rerank_failed"
ERROR_KEY = "rerank_error"
EMPTY_KEY = "empty_document"


def is_unscored(details: Mapping[str, Any]) -> bool:
    """Whether ``details`` flag a document the model did not judge (failed or empty).

    Example:
        >>> is_unscored({"rerank_failed": True}), is_unscored({"chunk": (0, 5)})
        (True, False)
    """
    return bool(details.get(FAILED_KEY) or details.get(EMPTY_KEY))


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One reranked document: where it was in the caller's input and how relevant it is.

    Attributes:
        index: Position of the document in the caller's input sequence.
        score: Relevance score, higher is more relevant; always a finite plain Python
            ``float`` (for a document that failed or was empty, flagged in ``details``:
            the lowest judged score of the call, ``0.0`` when none was judged).
        details: Backend extras that adapters copy into metadata (a cascade's per-stage
            scores, a long document's best chunk span, ``rerank_failed``/``rerank_error``/
            ``empty_document`` flags, ...). Empty for most backends and ignored by equality.

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
