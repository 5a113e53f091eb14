"""The hybrid stack from your own LangChain retrievers: BM25 + dense -> RRF -> cross-encoder -> LLM.

``RerankKitFusionRetriever`` is LangChain's ``EnsembleRetriever`` (same fields, callbacks,
config and concurrent async retrieval) with rerankkit's reciprocal rank fusion underneath and
a ``top_n`` cut; ``hybrid_retriever`` wraps it in a ``ContextualCompressionRetriever`` whose
``RerankKitCompressor`` runs the cross-encoder (and optionally an LLM reranker on its
survivors, as a ``CascadeReranker``).

Example:
    >>> from langchain_core.documents import Document
    >>> from langchain_core.retrievers import BaseRetriever
    >>> from rerankkit.testing import KeywordReranker
    >>> class Fixed(BaseRetriever):
    ...     docs: list[Document]
    ...     def _get_relevant_documents(self, query, *, run_manager):
    ...         return self.docs
    >>> bm25 = Fixed(docs=[Document("cats purr"), Document("dogs bark")])
    >>> dense = Fixed(docs=[Document("kittens are young cats"), Document("cats purr")])
    >>> retriever = hybrid_retriever([bm25, dense], KeywordReranker(), rerank_top_n=2)
    >>> [d.page_content for d in retriever.invoke("why do cats purr")]
    ['cats purr', 'kittens are young cats']
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from rerankkit.adapting import fuse_items, fusion_fields, require_extra

require_extra("langchain_classic", "langchain")  # the install hint, not a bare ImportError

from langchain_classic.retrievers import (  # noqa: E402
    ContextualCompressionRetriever,
    EnsembleRetriever,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models import BaseLanguageModel  # noqa: E402
from langchain_core.retrievers import RetrieverLike  # noqa: E402
from langchain_core.runnables import Runnable  # noqa: E402
from pydantic import Field, model_validator  # noqa: E402

from langchain_rerankkit._compressor import RerankKitCompressor  # noqa: E402
from langchain_rerankkit._llm import as_rerankkit_llm  # noqa: E402
from rerankkit import Reranker  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rerankkit.adapting import StageOptions

RRF_SCORE_KEY = "rrf_score"
# How construction errors name c and top_n: hybrid_retriever sets its caller's names (the
# retriever's validation drops a pydantic validation context, so it reads this instead).
_NAMES: ContextVar[Mapping[str, str] | None] = ContextVar("fusion_names", default=None)


class RerankKitFusionRetriever(EnsembleRetriever):
    """``EnsembleRetriever`` with rerankkit's weighted reciprocal rank fusion and a ``top_n`` cut.

    A document is identified by ``metadata[id_key]`` when ``id_key`` is set, else by its
    ``page_content`` (as in ``EnsembleRetriever``); a document a retriever returns twice
    counts once, at its better rank. Returns new ``Document`` objects (id kept) whose
    metadata adds ``rrf_score``; the retrievers' documents are not modified.

    ``c`` (the RRF constant, any number ``>= 0``), ``weights`` and ``top_n`` are checked at
    construction by ``rerankkit.adapting.fusion_fields``, as LlamaIndex's twin does: a string
    such as ``c="60"`` is refused rather than coerced. Missing or empty ``weights`` are equal.

    Example:
        >>> from langchain_core.documents import Document
        >>> from langchain_core.retrievers import BaseRetriever
        >>> class Fixed(BaseRetriever):
        ...     docs: list[Document]
        ...     def _get_relevant_documents(self, query, *, run_manager):
        ...         return self.docs
        >>> first = Fixed(docs=[Document("a"), Document("b")])
        >>> fusion = RerankKitFusionRetriever(
        ...     retrievers=[first, Fixed(docs=[Document("b")])], weights=[1, 1], top_n=1
        ... )
        >>> [(d.page_content, round(d.metadata["rrf_score"], 4)) for d in fusion.invoke("q")]
        [('b', 0.0325)]
        >>> RerankKitFusionRetriever(retrievers=[first], c=-1)
        Traceback (most recent call last):
        pydantic_core._pydantic_core.ValidationError: 1 validation error for ...
          Value error, c must be >= 0, got -1.0 ...
    """

    c: float = 60  # type: ignore[assignment]  # widened: RRF's k is any number >= 0
    """RRF constant (``>= 0``)."""
    top_n: int | None = Field(default=100)
    """Keep at most this many fused documents (``None`` keeps all)."""

    @model_validator(mode="before")
    @classmethod
    def _fusion(cls, values: Any) -> Any:
        # Runs before EnsembleRetriever's own validator and before pydantic's coercion.
        if not isinstance(values, dict):
            return values
        retrievers = values.get("retrievers")
        weights = values.get("weights")
        fields = fusion_fields(
            len(retrievers) if isinstance(retrievers, Sequence) else 0,
            k=values.get("c", 60),
            weights=None if isinstance(weights, (list, tuple)) and not weights else weights,
            top_n=values.get("top_n", 100),
            names={"k": "c", "top_n": "top_n", **(_NAMES.get() or {})},
        )
        return {**values, "c": fields["k"], "weights": fields["weights"], "top_n": fields["top_n"]}

    def _key(self, document: Document) -> Hashable:
        return document.page_content if self.id_key is None else document.metadata[self.id_key]

    def weighted_reciprocal_rank(self, doc_lists: list[list[Document]]) -> list[Document]:
        """Fuse the retrievers' lists (best first) with ``rerankkit.adapting.fuse_items``,
        with the settings checked at construction."""
        fused = fuse_items(
            doc_lists, key=self._key, k=self.c, weights=self.weights, top_n=self.top_n
        )
        return [
            document.model_copy(update={"metadata": {**document.metadata, RRF_SCORE_KEY: score}})
            for document, score in fused
        ]


def hybrid_compressor(
    reranker: Reranker | str | os.PathLike[str], **stages: Unpack[StageOptions]
) -> RerankKitCompressor:
    """The reranking stages as one ``RerankKitCompressor``.

    ``reranker`` keeps ``rerank_top_n`` (default 10); with ``llm_reranker``, that LLM reranks
    those and keeps ``llm_top_n`` (default 3; a ``CascadeReranker``: metadata gets
    ``stage_scores``). ``score_threshold`` applies to the last stage's score.

    Args:
        reranker: A rerankkit ``Reranker`` or a cross-encoder name / path.
        **stages: ``rerank_top_n``, ``llm_reranker`` (a rerankkit ``Reranker`` or any
            LangChain chat model / LLM, e.g. ``ChatOpenAI(...)``, which then ranks listwise),
            ``llm_top_n``, ``score_threshold``, ``reorder``
            (``rerankkit.adapting.StageOptions``; ``RerankSettings.from_stages``).

    Raises:
        TypeError, ValueError: A bad stage option (named).

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> hybrid_compressor(KeywordReranker(), llm_reranker=KeywordReranker()).top_n
        3
    """
    llm = stages.get("llm_reranker")
    if isinstance(llm, (BaseLanguageModel, Runnable)):  # a LangChain model: rank listwise
        stages = {**stages, "llm_reranker": as_rerankkit_llm(llm)}
    return RerankKitCompressor.from_stages(reranker, **stages)


def hybrid_retriever(
    retrievers: Sequence[RetrieverLike],
    reranker: Reranker | str | os.PathLike[str],
    *,
    weights: Sequence[float] | None = None,
    k: float = 60,
    id_key: str | None = None,
    fusion_top_n: int | None = 100,
    **stages: Unpack[StageOptions],
) -> ContextualCompressionRetriever:
    """BM25 + dense (your retrievers) -> RRF top ``fusion_top_n`` -> ``reranker`` top
    ``rerank_top_n`` -> optional ``llm_reranker`` top ``llm_top_n``.

    Args:
        retrievers: Your first-stage retrievers, e.g. ``BM25Retriever`` and
            ``vectorstore.as_retriever(search_kwargs={"k": 100})``.
        reranker: A rerankkit ``Reranker`` or a cross-encoder name / path.
        weights: One RRF weight per retriever (default: equal).
        k: RRF constant (``>= 0``).
        id_key: Metadata key identifying a document across retrievers (default:
            ``page_content``).
        fusion_top_n: How many fused documents reach the reranker (``None``: all).
        **stages: ``rerank_top_n`` (10), ``llm_reranker`` (a rerankkit ``Reranker`` or a
            LangChain chat model / LLM), ``llm_top_n`` (3),
            ``score_threshold`` (minimum last-stage score), ``reorder``
            (``"lost_in_the_middle"`` puts the best documents at both ends); see
            ``rerankkit.adapting.StageOptions``.

    Returns:
        A ``ContextualCompressionRetriever``; ``.invoke(query)`` / ``.ainvoke(query)``.

    Raises:
        TypeError, ValueError: A bad weight, count or stage option (named), before any model
            is loaded; the fusion settings are checked by ``rerankkit.adapting.fusion_fields``.
    """
    retrievers = list(retrievers)
    fields: dict[str, Any] = {  # checked, once, by the retriever's validator
        "retrievers": retrievers,
        "weights": [1.0] * len(retrievers) if weights is None else weights,
        "c": k,
        "id_key": id_key,
        "top_n": fusion_top_n,
    }
    names = _NAMES.set({"k": "k", "top_n": "fusion_top_n"})  # errors name this caller's arguments
    try:
        fusion = RerankKitFusionRetriever(**fields)
    finally:
        _NAMES.reset(names)
    compressor = hybrid_compressor(reranker, **stages)
    return ContextualCompressionRetriever(base_compressor=compressor, base_retriever=fusion)
