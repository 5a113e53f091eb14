"""Building blocks for framework adapters: LangChain, LlamaIndex, or your own.

An adapter converts types and nothing else. Its settings are :class:`RerankSettings`, a
pydantic model whose fields check each setting once, when it is set; an adapter subclasses
it next to its framework's base class (or holds an instance). A call checks that the
framework objects are the right kind (:func:`check_items`), hands them to
:func:`rerank_items` / :func:`arerank_items` with a way to get each one's text, and turns
every :class:`KeptItem` of the :class:`RerankOutcome` into a NEW framework object whose
metadata adds ``kept.metadata``. Ordering, ``top_n``, ``score_threshold``, the final
reordering, an empty query and a failing reranker (documents kept, unranked and marked) are
decided here and in :class:`rerankkit.Reranker`, once, so every adapter behaves the same.

The rest: :class:`RerankerField` / :class:`PointwiseRerankerField` / :data:`UnrankedField`
(field types for other pydantic models, such as a cross-encoder interface, with
:func:`score_pairs`); :func:`reranker_name` (for traces and events); :func:`is_blank` (the
core's test of an empty document or query: whitespace and invisible format characters only);
the hybrid stack's fusion
(:func:`fusion_fields` once, :func:`fuse_items` per query; :class:`StageOptions` and
``RerankSettings.from_stages`` for the reranking stages); optional framework parts with an
install hint (:func:`require_extra`, :func:`is_installed`, :func:`lazy_exports`).

Example:
    The whole of a minimal adapter for objects with a ``.text``, here strings:

    >>> from rerankkit.testing import KeywordReranker
    >>> class Adapter(RerankSettings):
    ...     def rerank(self, texts, query):
    ...         outcome = rerank_items(self, query, check_items(texts, str, "texts"), text=str)
    ...         return [(kept.item, kept.metadata) for kept in outcome.kept]
    >>> Adapter(reranker=KeywordReranker(), top_n=1).rerank(["a dog", "a cat"], "cat")
    [('a cat', {'relevance_score': 1.0})]
"""

from rerankkit._blank import is_blank
from rerankkit._optional import is_installed, lazy_exports
from rerankkit._optional import require as require_extra
from rerankkit._validation import check_sequence as check_items
from rerankkit.adapting._hybrid import FusionFields, StageOptions, fuse_items, fusion_fields
from rerankkit.adapting._pairs import score_pairs
from rerankkit.adapting._rerank import KeptItem, RerankOutcome, arerank_items, rerank_items
from rerankkit.adapting._settings import (
    PointwiseRerankerField,
    ReorderMode,
    RerankerField,
    RerankSettings,
    UnrankedField,
    reranker_name,
)

__all__ = [
    "FusionFields",
    "KeptItem",
    "PointwiseRerankerField",
    "ReorderMode",
    "RerankOutcome",
    "RerankSettings",
    "RerankerField",
    "StageOptions",
    "UnrankedField",
    "arerank_items",
    "check_items",
    "fuse_items",
    "fusion_fields",
    "is_blank",
    "is_installed",
    "lazy_exports",
    "require_extra",
    "rerank_items",
    "reranker_name",
    "score_pairs",
]
