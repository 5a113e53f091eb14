"""``RerankKitCompressor``: any rerankkit reranker as a LangChain document compressor.

Each call is a LangChain run (a chain run named ``RerankKitCompressor``, a child of the
retriever's run) reported through the callbacks it is given: inputs ``{"query", "documents":
count}``, outputs ``{"documents": [{"id", "index", "relevance_score"}, ...], "reranked"}``
(with ``prune``, also ``"pruned"``, and each document reports ``kept_tokens`` and
``original_tokens``), metadata ``{"reranker": name, "top_n", "prune", "budget_tokens"}``, and
any error. LLM calls made by the reranker run inside it, so each is a child run
(``astream_events(version="v2")`` shows them all).

A reranker that raises (``on_reranker_error="unranked"``) ends this run with
``on_chain_error(error)`` and the documents still go back to the retriever, unranked and
marked: as LangChain's ``with_fallbacks`` reports a failed runnable whose fallback answered.

With ``min_relevance``, the outputs also say ``"abstained"``; a call where no document
reaches it (the compressor abstains) dispatches the custom event ``rerankkit_abstained``
(``{"query", "documents", "min_relevance", "on_no_relevant"}``; ``astream_events`` shows it
as ``on_custom_event``), so a chain or agent can answer "I could not find it".

A pruner that raises ends it the same way; the documents come back reranked, unpruned.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables.config import set_config_context
from langchain_core.runnables.utils import coro_with_context

from langchain_rerankkit._llm import as_rerankkit_llm, check_model
from rerankkit import adapting

if TYPE_CHECKING:
    from langchain_core.language_models import BaseLanguageModel


def _text(document: Document) -> str:
    return document.page_content


def _new_document(kept: adapting.KeptItem[Document]) -> Document:
    # model_copy keeps id, type and any subclass fields; the metadata is a deep copy, so
    # nothing done to the result (nested lists included) reaches the caller's Document.
    metadata = {**copy.deepcopy(kept.item.metadata), **kept.metadata}
    update: dict[str, Any] = {"metadata": metadata}
    if kept.text is not None:  # pruned (prune=...): the kept sentences only
        update["page_content"] = kept.text
    return kept.item.model_copy(update=update)


ABSTAINED_EVENT = "rerankkit_abstained"
"""The custom event a call dispatches when no document reaches ``min_relevance``."""


def _run_outputs(
    outcome: adapting.RerankOutcome[Document], cut: bool, pruning: bool
) -> dict[str, Any]:
    """What the run reports: each kept document's id, input position and score; with an
    adaptive cut (``cut``), whether it abstained; when the compressor prunes (``pruning``),
    whether it did and each document's tokens."""
    summary = []
    for kept in outcome.kept:
        entry: dict[str, Any] = {"id": kept.item.id, "index": kept.index}
        if outcome.reranked:
            entry["relevance_score"] = kept.score
        if outcome.pruned:
            entry["kept_tokens"] = kept.metadata["kept_tokens"]
            entry["original_tokens"] = kept.metadata["original_tokens"]
        summary.append(entry)
    outputs: dict[str, Any] = {"documents": summary, "reranked": outcome.reranked}
    if pruning:
        outputs["pruned"] = outcome.pruned
    if cut:
        outputs["abstained"] = outcome.abstained
    return outputs


class RerankKitCompressor(adapting.RerankSettings, BaseDocumentCompressor):
    """Reranks retrieved documents with a rerankkit ``Reranker``; a drop-in compressor for
    ``ContextualCompressionRetriever`` and ``DocumentCompressorPipeline``.

    Returns new ``Document`` objects, best first, with the original metadata plus
    ``metadata["relevance_score"]`` (always finite; and any backend details, e.g. a chunk
    span); ``id`` is kept and the caller's documents are left as they were. A document with
    empty ``page_content`` is never sent to the model: it is kept and ranked last with
    ``empty_document: True``; one whose scoring failed ranks last with ``rerank_failed``/
    ``rerank_error`` (see ``rerankkit._result``).

    An empty or whitespace query (an agent's tool call with ``""``) returns the first
    ``top_n`` documents in retrieval order with ``metadata["reranked"] = False`` and no
    ``relevance_score``, and logs one warning; ``on_empty_query="raise"`` raises ValueError.

    A reranker that raises (a remote service's ``RemoteServiceError`` after its retries, an
    ``LLMCallError``, a model's ``RuntimeError``: any ``Exception``) does not lose the
    documents: they come back in retrieval order cut to ``top_n`` with ``metadata["reranked"]
    = False`` and ``metadata["rerank_error"] = "<ExceptionType>: <message>"``, one warning is
    logged, and the run reports the error (``on_chain_error``) before the retriever goes on.
    ``on_reranker_error="raise"`` raises instead. The caller's own bad input (a non-``str``
    query, a non-``Document``) is checked first and always raises; ``KeyboardInterrupt`` and
    ``CancelledError`` are never caught (see ``rerankkit.adapting.rerank_items``).

    ``min_relevance=p`` (with a calibrated reranker) keeps only documents with P(relevant)
    >= p, ``top_n`` then a ceiling; when none reaches it the compressor abstains: no
    documents (``on_no_relevant="empty"``) or the best one with
    ``metadata["below_min_relevance"] = True`` (``"best"``), and the run reports it (outputs
    ``abstained``, custom event ``rerankkit_abstained``).

    Context pruning: ``prune=True`` (or a ``rerankkit.ContextPruner``) and ``budget_tokens``
    keep only the sentences that answer the query (see ``rerankkit.adapting.RerankSettings``):
    the new documents' ``page_content`` is the pruned text, with ``metadata["kept_spans"]``,
    ``["original_tokens"]`` and ``["kept_tokens"]``.

    Tracing: each call is a run reported to the callbacks LangChain passes (see the module
    docstring). Serialization: the compressor pickles (the reranker too; a model is loaded
    again on unpickling), and ``model_dump()`` / ``model_dump_json()`` write the reranker as
    a spec string (``"cross-encoder:PATH"``) that the constructor reads back; a reranker with
    no spec form (an LLM reranker, a cascade) makes them raise pydantic's
    ``PydanticSerializationError`` (a ValueError) saying ``reranker cannot be serialized``.

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

    @classmethod
    def from_llm(cls, llm: BaseLanguageModel[Any], **options: Any) -> RerankKitCompressor:
        """A compressor that ranks with a LangChain chat model or LLM.

        Args:
            llm: Any LangChain ``BaseLanguageModel`` (``ChatOpenAI``, ``ChatOllama``, ...).
            **options: ``method`` (``"listwise"``, ``"pointwise"``, ``"rating"``), the fields
                (``top_n`` default 3, ``score_threshold``, ...) and the LLM reranker's own
                options (``window_size``, prompts, ``max_concurrency``, ...); see
                ``rerankkit.adapting.RerankSettings.from_rerankkit_llm``.

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
        return cls.from_rerankkit_llm(as_rerankkit_llm(llm), **options)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``.

        Args:
            documents: Retrieved documents; ``page_content`` is what the model reads.
            query: The search query.
            callbacks: The caller's callbacks (a retriever passes its run's child manager):
                this call is reported as a run, and the reranker's LLM calls as its children.

        Returns:
            New documents, reranked and cut to ``top_n`` / ``score_threshold``.

        Raises:
            TypeError: ``documents`` holds something other than ``Document`` (position named).
            ValueError: A blank query with ``on_empty_query="raise"``.
            Exception: What the reranker raised, with ``on_reranker_error="raise"``.
        """
        documents = adapting.check_items(documents, Document, "documents")
        run = self._start_run(CallbackManager, callbacks, documents, query)
        try:
            with set_config_context({"callbacks": run.get_child()}) as context:
                outcome = context.run(adapting.rerank_items, self, query, documents, text=_text)
        except BaseException as error:
            run.on_chain_error(error)
            raise
        if outcome.abstained:
            run.get_child().on_custom_event(
                ABSTAINED_EVENT, self._abstain_data(query, documents), run_id=run.run_id
            )
        if outcome.failure is not None:
            run.on_chain_error(outcome.failure)
        else:
            run.on_chain_end(
                _run_outputs(outcome, self.min_relevance is not None, self.prune is not False)
            )
        return [_new_document(kept) for kept in outcome.kept]

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Async ``compress_documents``: model work runs off the event loop (``arerank``);
        the run and its LLM child runs are reported as in the sync call."""
        documents = adapting.check_items(documents, Document, "documents")
        run = await self._start_run(AsyncCallbackManager, callbacks, documents, query)
        try:
            with set_config_context({"callbacks": run.get_child()}) as context:
                reranking = adapting.arerank_items(self, query, documents, text=_text)
                outcome = await coro_with_context(reranking, context)
        except BaseException as error:
            await run.on_chain_error(error)
            raise
        if outcome.abstained:
            await run.get_child().on_custom_event(
                ABSTAINED_EVENT, self._abstain_data(query, documents), run_id=run.run_id
            )
        if outcome.failure is not None:
            await run.on_chain_error(outcome.failure)
        else:
            await run.on_chain_end(
                _run_outputs(outcome, self.min_relevance is not None, self.prune is not False)
            )
        return [_new_document(kept) for kept in outcome.kept]

    def _abstain_data(self, query: str, documents: list[Document]) -> dict[str, Any]:
        return {
            "query": query,
            "documents": len(documents),
            "min_relevance": self.min_relevance,
            "on_no_relevant": self.on_no_relevant,
        }

    def _start_run(
        self, manager: Any, callbacks: Callbacks | None, documents: list[Document], query: str
    ) -> Any:
        """This call's run: ``on_chain_start`` of a (sync or async) callback manager."""
        metadata: dict[str, Any] = {
            "reranker": adapting.reranker_name(self.reranker),
            "top_n": self.top_n,
            "prune": self.prune is not False,
            "budget_tokens": self.budget_tokens,
        }
        if self.min_relevance is not None:
            metadata["min_relevance"] = self.min_relevance
        inputs = {"query": query, "documents": len(documents)}
        configured = manager.configure(callbacks, local_metadata=metadata)
        return configured.on_chain_start(None, inputs, name=type(self).__name__)
