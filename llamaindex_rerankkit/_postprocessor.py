"""``RerankKitPostprocessor``: any rerankkit reranker as a LlamaIndex node postprocessor."""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle

from llamaindex_rerankkit._llm import as_rerankkit_llm
from rerankkit import Reranker, adapting

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

dispatcher = get_dispatcher(__name__)

RETRIEVAL_SCORE_KEY = "retrieval_score"
ABSTAINED_KEY = "abstained"
"""In the RERANKING event's end payload when no node reached ``min_relevance``."""

Finish = Callable[[adapting.RerankOutcome[NodeWithScore]], list[NodeWithScore]]


class RerankKitPostprocessor(adapting.RerankSettings, BaseNodePostprocessor):
    """Reranks retrieved nodes with a rerankkit ``Reranker``; a drop-in for the
    ``node_postprocessors`` of query and chat engines.

    Returns new ``NodeWithScore`` objects, best first, whose ``score`` is the rerank score
    (always finite). A node without text of its own (an ``ImageNode``, an empty chunk) is
    never sent to the model: it is kept and ranked last with ``empty_document: True`` in its
    metadata; a node whose scoring failed ranks last with ``rerank_failed``/``rerank_error``
    (see ``rerankkit._result``). Each carries a copy of its node (same ``node_id``) whose
    metadata adds ``relevance_score``, any backend details (e.g. a chunk span) and, with
    ``keep_retrieval_score``, the retriever's score as ``retrieval_score``. The added keys
    are excluded from the LLM and embedding views of the node, so they never leak into a
    prompt. The caller's nodes keep their scores and metadata.

    An empty or whitespace query returns the first ``top_n`` nodes in retrieval order, with
    their retrieval scores and ``metadata["reranked"] = False`` (``on_empty_query``). A
    reranker that raises (a remote service's ``RemoteServiceError`` after its retries, an
    ``LLMCallError``, a model's ``RuntimeError``: any ``Exception``) does not lose the nodes
    either: they come back the same way plus ``metadata["rerank_error"] = "<ExceptionType>:
    <message>"``, one warning is logged, the ``RERANKING`` callback event ends with the
    exception (``EventPayload.EXCEPTION``) and the fallback nodes, and an ``ExceptionEvent``
    precedes the ``ReRankEndEvent``; ``on_reranker_error="raise"`` raises instead. The
    caller's own bad input (no query, a non-``NodeWithScore``) is checked first and always
    raises; ``KeyboardInterrupt`` and ``CancelledError`` are never caught.

    ``min_relevance=p`` (with a calibrated reranker) keeps only nodes with P(relevant) >= p,
    ``top_n`` then a ceiling; when none reaches it the postprocessor abstains: no nodes
    (``on_no_relevant="empty"``; a query engine then answers "Empty Response") or the best
    one with ``metadata["below_min_relevance"] = True`` (``"best"``), and the ``RERANKING``
    callback event's end payload holds ``"abstained": True``.

    Context pruning: ``prune=True`` (or a ``rerankkit.ContextPruner``) and ``budget_tokens``
    keep only the sentences of each node's own text that answer the query (see
    ``rerankkit.adapting.RerankSettings``): the new node's text is the pruned text, its
    metadata adds ``kept_spans``, ``original_tokens`` and ``kept_tokens``; the events run
    around the pruning too, and a pruner that raises ends them as a reranker failure does,
    with the reranked nodes unpruned (``pruned: False``).

    Example:
        >>> from llama_index.core.schema import TextNode
        >>> from rerankkit.testing import KeywordReranker
        >>> post = RerankKitPostprocessor(reranker=KeywordReranker(), top_n=1)
        >>> nodes = [NodeWithScore(node=TextNode(text=t), score=0.5) for t in ["a dog", "a cat"]]
        >>> [(n.text, n.score) for n in post.postprocess_nodes(nodes, query_str="cat")]
        [('a cat', 1.0)]

        In a query engine::

            post = RerankKitPostprocessor(reranker="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3)
            engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[post])
    """

    keep_retrieval_score: bool = False
    """Store the retriever's score in the new node's ``metadata["retrieval_score"]``."""

    metadata_mode: MetadataMode = MetadataMode.EMBED
    """Which metadata the model reads with a node's text (``node.get_content``): ``EMBED``,
    as LlamaIndex's ``SentenceTransformerRerank``; ``NONE`` for the text alone."""

    def __init__(self, reranker: Reranker | str | os.PathLike[str], **fields: Any) -> None:
        """``reranker`` may be given by position; ``fields`` are the other fields above."""
        super().__init__(reranker=reranker, **fields)  # validated by the field

    def __getstate__(self) -> dict[str, Any]:
        # LlamaIndex's BaseComponent drops (from this object too) what does not pickle, with a
        # log line: raise pickle's own error first, rather than lose the reranker.
        pickle.dumps(self.reranker)
        return super().__getstate__()

    @classmethod
    def class_name(cls) -> str:
        return "RerankKitPostprocessor"

    @classmethod
    def from_llm(cls, llm: LLM, **options: Any) -> RerankKitPostprocessor:
        """A postprocessor that ranks with a LlamaIndex LLM.

        Args:
            llm: Any LlamaIndex ``LLM`` (``OpenAI``, ``Ollama``, ``HuggingFaceLLM``, ...).
            **options: ``method`` (``"listwise"``, ``"pointwise"``, ``"rating"``), the fields
                (``top_n`` default 3, ``score_threshold``, ...) and the LLM reranker's own
                options (``window_size``, prompts, ``max_concurrency``, ...); see
                ``rerankkit.adapting.RerankSettings.from_rerankkit_llm``.

        Raises:
            TypeError: ``llm`` is not a LlamaIndex LLM.
            ValueError: An unknown ``method`` or a bad option (named).

        Example:
            >>> from llama_index.core.llms import MockLLM
            >>> post = RerankKitPostprocessor.from_llm(MockLLM(), method="rating", top_n=2)
            >>> post.reranker, post.top_n
            (LLMPointwiseReranker(llm=LlamaIndexLLM(MockLLM), method='rating'), 2)
        """
        return cls.from_rerankkit_llm(as_rerankkit_llm(llm), **options)

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        with self._rerank_event(nodes, query_bundle) as (query, nodes, finish):
            return finish(
                adapting.rerank_items(self, query, nodes, text=self._text, content=_content)
            )

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        with self._rerank_event(nodes, query_bundle) as (query, nodes, finish):
            outcome = await adapting.arerank_items(
                self, query, nodes, text=self._text, content=_content
            )
            return finish(outcome)

    def _text(self, node: NodeWithScore) -> str:
        # A node without content of its own (an ImageNode, an empty chunk) is an empty
        # document even where metadata_mode would render its metadata: the core never sends
        # it to the model and ranks it last, flagged empty_document.
        if adapting.is_blank(node.node.get_content(metadata_mode=MetadataMode.NONE)):
            return ""
        return node.node.get_content(metadata_mode=self.metadata_mode)

    def _new_node(self, kept: adapting.KeptItem[NodeWithScore]) -> NodeWithScore:
        added = kept.metadata
        if self.keep_retrieval_score and kept.score is not None:
            added = {**added, RETRIEVAL_SCORE_KEY: kept.item.score}
        score = kept.item.score if kept.score is None else kept.score  # unranked: retriever's
        node = _with_metadata(kept.item.node, added)
        if kept.text is not None:  # pruned (prune=...): the kept sentences only
            node.set_content(kept.text)  # on the copy
        return NodeWithScore(node=node, score=score)

    @contextmanager
    def _rerank_event(
        self, nodes: Any, query_bundle: QueryBundle | None
    ) -> Iterator[tuple[str, list[NodeWithScore], Finish]]:
        """Start/end instrumentation events and the RERANKING callback event around one call.

        Checks the call's input first (a query; ``NodeWithScore`` items), then yields the
        query, the nodes and ``finish(outcome) -> new_nodes``, which records the result on
        both channels.
        Every call that returns, empty input and a reranker fallback included, emits start
        and end; after a fallback the callback event's end payload also holds the exception
        and an ``ExceptionEvent`` comes before the end event. On a raised error the callback
        event ends with the exception (LlamaIndex's own handling) and no end event is
        dispatched.
        """
        if query_bundle is None:
            raise ValueError(
                "RerankKitPostprocessor needs a query: pass query_bundle or query_str to "
                "postprocess_nodes"
            )
        nodes = adapting.check_items(nodes, NodeWithScore, "nodes")
        model_name = adapting.reranker_name(self.reranker)
        top_n = len(nodes) if self.top_n is None else self.top_n
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=model_name)
        )
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: model_name,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:

            def finish(outcome: adapting.RerankOutcome[NodeWithScore]) -> list[NodeWithScore]:
                new_nodes = [self._new_node(kept) for kept in outcome.kept]
                end: dict[str, Any] = {EventPayload.NODES: new_nodes}
                if outcome.abstained:
                    end[ABSTAINED_KEY] = True
                if outcome.failure is not None:
                    end[EventPayload.EXCEPTION] = outcome.failure
                    dispatcher.event(ExceptionEvent(exception=outcome.failure))
                event.on_end(payload=end)
                dispatcher.event(ReRankEndEvent(nodes=new_nodes))
                return new_nodes

            yield query_bundle.query_str, nodes, finish


def _content(node: NodeWithScore) -> str:
    """What pruning cuts: the node's own text, without metadata (the new node carries it)."""
    return node.node.get_content(metadata_mode=MetadataMode.NONE)


def _with_metadata(inner: BaseNode, added: dict[str, Any]) -> BaseNode:
    # A shallow copy with deep-copied metadata and new exclusion lists: the caller's node
    # is untouched, and the added keys never leak into what an LLM or embedding model reads.
    update: dict[str, Any] = {"metadata": {**copy.deepcopy(inner.metadata), **added}}
    for excluded in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
        keys = getattr(inner, excluded)
        update[excluded] = keys + [key for key in added if key not in keys]
    return inner.model_copy(update=update)
