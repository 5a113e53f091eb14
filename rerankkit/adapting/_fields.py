"""Pydantic field types for adapters that are pydantic models (LangChain's compressors and
cross-encoders, LlamaIndex's postprocessors): the reranker, ``on_empty_query`` and
``on_reranker_error`` settings, validated and serialized the same way in every adapter.

Needs pydantic (both frameworks bring it); ``rerankkit.adapting`` does not import this module.

Example:
    >>> from pydantic import BaseModel, ConfigDict
    >>> class Settings(BaseModel):
    ...     model_config = ConfigDict(arbitrary_types_allowed=True)
    ...     reranker: RerankerField
    ...     on_empty_query: EmptyQueryField = "retrieval_order"
    >>> settings = Settings(reranker="keyword:")
    >>> settings.reranker, settings.model_dump()
    (KeywordReranker(), {'reranker': 'keyword:', 'on_empty_query': 'retrieval_order'})
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from rerankkit._base import Reranker
from rerankkit.adapting._empty_query import EmptyQueryMode, check_on_empty_query
from rerankkit.adapting._pairs import check_pointwise
from rerankkit.adapting._reranker_error import RerankerErrorMode, check_on_reranker_error
from rerankkit.adapting._serialization import reranker_field_spec
from rerankkit.adapting._settings import as_reranker

__all__ = ["EmptyQueryField", "PointwiseRerankerField", "RerankerErrorField", "RerankerField"]

RerankerField = Annotated[
    Reranker,
    BeforeValidator(as_reranker),
    PlainSerializer(reranker_field_spec, return_type=str),
]
"""A ``Reranker``, also given as a spec string or a cross-encoder name / path (see
:func:`rerankkit.adapting.as_reranker`); serialized as its spec string, or a TypeError naming
``reranker`` when it has none (:func:`rerankkit.adapting.reranker_field_spec`)."""

PointwiseRerankerField = Annotated[RerankerField, AfterValidator(check_pointwise)]
"""A :data:`RerankerField` whose reranker is pointwise (scores pairs alone)."""

EmptyQueryField = Annotated[EmptyQueryMode, BeforeValidator(check_on_empty_query)]
"""``"retrieval_order"`` or ``"raise"``; see :mod:`rerankkit.adapting._empty_query`."""

RerankerErrorField = Annotated[RerankerErrorMode, BeforeValidator(check_on_reranker_error)]
"""``"fallback"`` or ``"raise"``; see :mod:`rerankkit.adapting._reranker_error`."""
