"""Building blocks for framework adapters: LangChain, LlamaIndex, or your own.

An adapter converts types and nothing else. It checks that the framework objects it was
given are the right kind, pulls a text out of each, calls :func:`rerank_items` (or
:func:`arerank_items`), and turns every ``(item, RerankResult)`` pair back into a NEW
framework object carrying :func:`rerankkit.result_metadata`. Ordering, ``top_n``,
``score_threshold``, validation, empty input and the optional final reordering all happen
here and in :class:`rerankkit.Reranker`, once, so every adapter behaves the same.

Modules, one job each:

- :mod:`~rerankkit.adapting._items`: :func:`rerank_items` / :func:`arerank_items` and the final
  ordering (:data:`ReorderMode`).
- :mod:`~rerankkit.adapting._settings`: an adapter's settings, checked once
  (:func:`rerank_fields`, :func:`as_reranker`).
- :mod:`~rerankkit.adapting._llm`: the core of ``from_llm`` (:func:`fields_from_llm`).
- :mod:`~rerankkit.adapting._hybrid`: the fusion settings (:func:`fusion_fields`), RRF over
  framework objects (:func:`fuse_items`) and the hybrid reranking stages (:func:`hybrid_fields`,
  :class:`StageOptions`).
- :mod:`~rerankkit.adapting._empty_query`: an empty or whitespace query returns the documents
  unranked, marked (:func:`unranked_fallback`, :data:`NOT_RERANKED`), or raises.
- :mod:`~rerankkit.adapting._reranker_error`: a reranker that raises gives the documents back
  unranked, marked with the error (:func:`rerank_or_fallback`), or the error
  (``on_reranker_error="raise"``); adapters call this instead of :func:`rerank_items`.
- :mod:`~rerankkit.adapting._serialization`: a reranker's readable name (:func:`reranker_name`)
  and its spec string for ``model_dump`` / ``to_dict`` (:func:`reranker_field_spec`).
- :mod:`~rerankkit.adapting._pairs`: ``(query, document)`` pairs scored in one call
  (:func:`score_pairs`), for cross-encoder interfaces.
- :mod:`~rerankkit.adapting._fields`: pydantic field types for adapters that are pydantic models
  (the reranker as a spec string, ``on_empty_query``, ``on_reranker_error``); needs pydantic,
  so not imported here.
- :mod:`~rerankkit.adapting._extras`: optional framework parts with an install hint
  (:func:`require_extra`, :func:`is_installed`, :func:`lazy_exports`).

Example:
    The whole of a minimal adapter for objects with a ``.text``, here strings:

    >>> from rerankkit.testing import KeywordReranker
    >>> settings = rerank_fields(KeywordReranker(), top_n=1)  # checked once, at construction
    >>> reranker = settings.pop("reranker")
    >>> [(item, r.score) for item, r in rerank_items(reranker, "cat", ["a dog", "a cat"],
    ...                                               text=str, **settings)]
    [('a cat', 1.0)]
"""

from rerankkit._validation import check_int, check_score_threshold, check_top_n
from rerankkit.adapting._empty_query import (
    EMPTY_QUERY_MODES,
    NOT_RERANKED,
    EmptyQueryMode,
    check_on_empty_query,
    unranked_fallback,
)
from rerankkit.adapting._extras import (
    is_installed,
    lazy_exports,
    require_extra,
)
from rerankkit.adapting._fields import (
    EmptyQueryField,
    PointwiseRerankerField,
    RerankerErrorField,
    RerankerField,
)
from rerankkit.adapting._hybrid import (
    FusionFields,
    StageOptions,
    fuse_items,
    fusion_fields,
    hybrid_fields,
    llm_stage,
)
from rerankkit.adapting._items import (
    REORDER_MODES,
    ReorderMode,
    arerank_items,
    check_items,
    check_reorder,
    reorder_results,
    rerank_items,
)
from rerankkit.adapting._llm import fields_from_llm
from rerankkit.adapting._pairs import UNRANKED_PAIR_SCORE, check_pointwise, score_pairs
from rerankkit.adapting._reranker_error import (
    RERANKER_ERROR_MODES,
    RerankerErrorMode,
    RerankOutcome,
    arerank_or_fallback,
    check_on_reranker_error,
    error_reason,
    rerank_or_fallback,
)
from rerankkit.adapting._serialization import reranker_field_spec, reranker_name
from rerankkit.adapting._settings import RerankFields, as_reranker, rerank_fields

__all__ = [
    "EMPTY_QUERY_MODES",
    "NOT_RERANKED",
    "REORDER_MODES",
    "RERANKER_ERROR_MODES",
    "UNRANKED_PAIR_SCORE",
    "EmptyQueryField",
    "EmptyQueryMode",
    "FusionFields",
    "PointwiseRerankerField",
    "ReorderMode",
    "RerankFields",
    "RerankOutcome",
    "RerankerErrorField",
    "RerankerErrorMode",
    "RerankerField",
    "StageOptions",
    "arerank_items",
    "arerank_or_fallback",
    "as_reranker",
    "check_int",
    "check_items",
    "check_on_empty_query",
    "check_on_reranker_error",
    "check_pointwise",
    "check_reorder",
    "check_score_threshold",
    "check_top_n",
    "error_reason",
    "fields_from_llm",
    "fuse_items",
    "fusion_fields",
    "hybrid_fields",
    "is_installed",
    "lazy_exports",
    "llm_stage",
    "reorder_results",
    "require_extra",
    "rerank_fields",
    "rerank_items",
    "rerank_or_fallback",
    "reranker_field_spec",
    "reranker_name",
    "score_pairs",
    "unranked_fallback",
]
