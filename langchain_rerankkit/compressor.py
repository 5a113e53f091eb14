"""``RerankKitCompressor``: any rerankkit reranker as a LangChain document compressor."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, field_validator

from langchain_rerankkit._llm import as_rerankkit_llm, check_model
from rerankkit import Reranker, RerankResult, result_metadata
from rerankkit.adapting import (
    ReorderMode,
    arerank_items,
    as_reranker,
    check_items,
    check_reorder,
    check_score_threshold,
    check_top_n,
    fields_from_llm,
    rerank_items,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseLanguageModel


def _text(document: Document) -> str:
    return document.page_content


def _reranked(document: Document, result: RerankResult) -> Document:
    # model_copy keeps id, type and any subclass fields; the metadata is a deep copy, so
    # nothing done to the result (nested lists included) reaches the caller's Document.
    metadata = {**copy.deepcopy(document.metadata), **result_metadata(result)}
    return document.model_copy(update={"metadata": metadata})


class RerankKitCompressor(BaseDocumentCompressor):
    """Reranks retrieved documents with a rerankkit ``Reranker``; a drop-in compressor for
    ``ContextualCompressionRetriever`` and ``DocumentCompressorPipeline``.

    Returns new ``Document`` objects, best first, with the original metadata plus
    ``metadata["relevance_score"]`` (and any backend details, e.g. a chunk span); ``id`` is
    kept and the caller's documents are left as they were.

    Example:
        >>> from langchain_core.documents import Document
        >>> from rerankkit.testing import KeywordReranker
        >>> compressor = RerankKitCompressor(reranker=KeywordReranker(), top_n=1)
        >>> docs = [Document("a dog", id="d1"), Document("a cat", id="c1")]
        >>> [(d.id, d.metadata) for d in compressor.compress_documents(docs, "cat")]
        [('c1', {'relevance_score': 1.0})]

        With a real model, inside a retriever::

            compressor = RerankKitCompressor(reranker="cross-encoder/ms-marco-MiniLM-L6-v2")
            retriever = ContextualCompressionRetriever(
                base_compressor=compressor, base_retriever=vectorstore.as_retriever(k=20)
            )
    """

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, validate_assignment=True
    )

    reranker: Reranker
    """The backend, or a cross-encoder hub id / local folder (loaded once, as a
    ``CrossEncoderReranker``)."""

    top_n: int | None = 3
    """Keep at most this many documents; ``None`` keeps all."""

    score_threshold: float | None = None
    """Keep only documents with ``relevance_score >= score_threshold`` (before ``top_n``)."""

    reorder: ReorderMode = "none"
    """Final order of the kept documents: ``"none"`` (best first) or ``"lost_in_the_middle"``
    (best at both ends of the context, weakest in the middle)."""

    @field_validator("reranker", mode="before")
    @classmethod
    def _reranker(cls, value: Any) -> Reranker:
        return as_reranker(value)

    @field_validator("reorder", mode="before")
    @classmethod
    def _reorder(cls, value: Any) -> ReorderMode:
        return check_reorder(value)

    @field_validator("top_n", mode="before")
    @classmethod
    def _top_n(cls, value: Any) -> int | None:
        return check_top_n(value)

    @field_validator("score_threshold", mode="before")
    @classmethod
    def _score_threshold(cls, value: Any) -> float | None:
        return check_score_threshold(value)

    @classmethod
    def from_llm(cls, llm: BaseLanguageModel, **options: Any) -> RerankKitCompressor:
        """A compressor that ranks with a LangChain chat model or LLM.

        Args:
            llm: Any LangChain ``BaseLanguageModel`` (``ChatOpenAI``, ``ChatOllama``, ...).
            **options: ``method`` (``"listwise"``, ``"pointwise"``, ``"rating"``), the fields
                (``top_n`` default 3, ``score_threshold``, ``reorder``) and the LLM reranker's
                own options (``window_size``, prompts, ``max_concurrency``, ...); see
                ``rerankkit.adapting.fields_from_llm``.

        Raises:
            TypeError: ``llm`` is not a LangChain model.
            ValueError: An unknown ``method`` or a bad option (named).

        Example:
            >>> from langchain_core.language_models import FakeListChatModel
            >>> llm = FakeListChatModel(responses=["[2] > [1]"])
            >>> compressor = RerankKitCompressor.from_llm(llm, top_n=1)
            >>> [d.page_content for d in compressor.compress_documents(
            ...     [Document("a dog"), Document("a cat")], "cat")]
            ['a cat']
        """
        check_model(llm, "llm")  # named as this caller passed it (as_rerankkit_llm says model)
        return cls(**fields_from_llm(as_rerankkit_llm(llm), **options))

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``.

        Args:
            documents: Retrieved documents; ``page_content`` is what the model reads.
            query: The search query.
            callbacks: Accepted for LangChain compatibility; the reranker reports no callbacks.

        Returns:
            New documents, reranked and cut to ``top_n`` / ``score_threshold``.
        """
        pairs = rerank_items(
            self.reranker,
            query,
            check_items(documents, Document, "documents"),
            text=_text,
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            reorder=self.reorder,
        )
        return [_reranked(document, result) for document, result in pairs]

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async ``compress_documents``: model work runs off the event loop (``arerank``)."""
        pairs = await arerank_items(
            self.reranker,
            query,
            check_items(documents, Document, "documents"),
            text=_text,
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            reorder=self.reorder,
        )
        return [_reranked(document, result) for document, result in pairs]
