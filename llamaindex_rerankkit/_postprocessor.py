"""``RerankKitPostprocessor``: any rerankkit reranker as a LlamaIndex node postprocessor."""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, field_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle

from llamaindex_rerankkit._llm import as_rerankkit_llm
from rerankkit import Reranker, RerankResult, result_metadata
from rerankkit.adapting import (
    EmptyQueryField,
    ReorderMode,
    RerankerErrorField,
    RerankerField,
    RerankOutcome,
    arerank_or_fallback,
    check_items,
    check_reorder,
    check_score_threshold,
    check_top_n,
    fields_from_llm,
    rerank_or_fallback,
    reranker_name,
)

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

dispatcher = get_dispatcher(__name__)

RETRIEVAL_SCORE_KEY = "retrieval_score"


def _excluding(keys: list[str], added: list[str]) -> list[str]:
    return keys + [key for key in added if key not in keys]


class RerankKitPostprocessor(BaseNodePostprocessor):
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

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    reranker: RerankerField = Field(
        description=(
            "The backend: a rerankkit Reranker, a spec string or a cross-encoder hub id / "
            "folder (serialized as a spec string)."
        ),
    )
    top_n: int | None = Field(
        default=3, description="Keep at most this many nodes; None keeps all."
    )
    score_threshold: float | None = Field(
        default=None,
        description="Keep only nodes whose rerank score is >= this (applied before top_n).",
    )
    keep_retrieval_score: bool = Field(
        default=False,
        description="Store the retriever's score in the new node's metadata['retrieval_score'].",
    )
    reorder: ReorderMode = Field(
        default="none",
        description=(
            "Final order of the kept nodes: 'none' (best first) or 'lost_in_the_middle' "
            "(best at both ends of the context, weakest in the middle)."
        ),
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED,
        description=(
            "Which metadata the model reads with a node's text (node.get_content); EMBED, as "
            "LlamaIndex's SentenceTransformerRerank; NONE for the text alone."
        ),
    )
    on_empty_query: EmptyQueryField = Field(
        default="retrieval_order",
        description=(
            "An empty or whitespace query: 'retrieval_order' returns the nodes unranked and "
            "marked (metadata['reranked'] is False); 'raise' raises ValueError."
        ),
    )
    on_reranker_error: RerankerErrorField = Field(
        default="fallback",
        description=(
            "The reranker raised: 'fallback' returns the nodes in retrieval order, marked "
            "(metadata['reranked'] is False, metadata['rerank_error'] says why); 'raise' "
            "raises it."
        ),
    )

    def __init__(self, reranker: Reranker | str | os.PathLike[str], **kwargs: Any) -> None:
        """Build the postprocessor.

        Args:
            reranker: A rerankkit ``Reranker``, a spec string (``"cross-encoder:PATH"``), or
                a cross-encoder hub id / local folder (loaded once, here).
            **kwargs: The fields: ``top_n``, ``score_threshold``, ``keep_retrieval_score``,
                ``reorder``, ``metadata_mode``, ``on_empty_query``, ``on_reranker_error``,
                ``callback_manager``.

        Raises:
            pydantic.ValidationError: An unknown keyword argument or a bad field (named).
        """
        super().__init__(reranker=reranker, **kwargs)  # type: ignore[call-arg]  # our field

    def __getstate__(self) -> dict[str, Any]:
        # LlamaIndex's BaseComponent drops (from this object too) what does not pickle, with a
        # log line: raise pickle's own error first, rather than lose the reranker.
        pickle.dumps(self.reranker)
        return super().__getstate__()  # type: ignore[no-any-return]

    @field_validator("top_n", mode="before")
    @classmethod
    def _top_n(cls, value: Any) -> int | None:
        return check_top_n(value)

    @field_validator("score_threshold", mode="before")
    @classmethod
    def _score_threshold(cls, value: Any) -> float | None:
        return check_score_threshold(value)

    @field_validator("reorder", mode="before")
    @classmethod
    def _reorder(cls, value: Any) -> ReorderMode:
        return check_reorder(value)

    @classmethod
    def class_name(cls) -> str:
        return "RerankKitPostprocessor"

    @classmethod
    def from_llm(cls, llm: LLM, **options: Any) -> RerankKitPostprocessor:
        """A postprocessor that ranks with a LlamaIndex LLM.

        Args:
            llm: Any LlamaIndex ``LLM`` (``OpenAI``, ``Ollama``, ``HuggingFaceLLM``, ...).
            **options: ``method`` (``"listwise"``, ``"pointwise"``, ``"rating"``), the fields
                (``top_n`` default 3, ``score_threshold``, ``reorder``) and the LLM reranker's
                own options (``window_size``, prompts, ``max_concurrency``, ...); see
                ``rerankkit.adapting.fields_from_llm``.

        Raises:
            TypeError: ``llm`` is not a LlamaIndex LLM.
            ValueError: An unknown ``method`` or a bad option (named).

        Example:
            >>> from llama_index.core.llms import MockLLM
            >>> post = RerankKitPostprocessor.from_llm(MockLLM(), method="rating", top_n=2)
            >>> post.reranker, post.top_n
            (LLMPointwiseReranker(llm=LlamaIndexLLM(MockLLM), method='rating'), 2)
        """
        return cls(**fields_from_llm(as_rerankkit_llm(llm), **options))

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        query = _query_str(query_bundle)
        nodes = check_items(nodes, NodeWithScore, "nodes")
        with self._rerank_event(nodes, query_bundle) as finish:
            return finish(rerank_or_fallback(self.reranker, query, nodes, **self._settings()))

    @dispatcher.span
    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        query = _query_str(query_bundle)
        nodes = check_items(nodes, NodeWithScore, "nodes")
        with self._rerank_event(nodes, query_bundle) as finish:
            outcome = await arerank_or_fallback(self.reranker, query, nodes, **self._settings())
            return finish(outcome)

    def _text(self, node: NodeWithScore) -> str:
        # A node without content of its own (an ImageNode, an empty chunk) is an empty
        # document even where metadata_mode would render its metadata: the core never sends
        # it to the model and ranks it last, flagged empty_document.
        if not node.node.get_content(metadata_mode=MetadataMode.NONE).strip():
            return ""
        return node.node.get_content(metadata_mode=self.metadata_mode)

    def _settings(self) -> dict[str, Any]:
        return {
            "text": self._text,
            "top_n": self.top_n,
            "score_threshold": self.score_threshold,
            "reorder": self.reorder,
            "on_empty_query": self.on_empty_query,
            "on_reranker_error": self.on_reranker_error,
        }

    def _nodes(self, outcome: RerankOutcome[NodeWithScore]) -> list[NodeWithScore]:
        if outcome.ranked is not None:
            return [self._reranked(node, result) for node, result in outcome.ranked]
        marker = outcome.unranked_metadata()
        return [
            NodeWithScore(node=_with_metadata(node.node, marker), score=node.score)
            for node in outcome.unranked
        ]

    @contextmanager
    def _rerank_event(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> Iterator[Callable[[RerankOutcome[NodeWithScore]], list[NodeWithScore]]]:
        """Start/end instrumentation events and the RERANKING callback event around one call.

        Yields ``finish(outcome) -> new_nodes``, which records the result on both channels.
        Every call that returns, empty input and a reranker fallback included, emits start
        and end; after a fallback the callback event's end payload also holds the exception
        and an ``ExceptionEvent`` comes before the end event. On a raised error the callback
        event ends with the exception (LlamaIndex's own handling) and no end event is
        dispatched.
        """
        model_name = reranker_name(self.reranker)
        top_n = len(nodes) if self.top_n is None else self.top_n
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=model_name)
        )
        payload: dict[str, Any] = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: model_name,
            EventPayload.QUERY_STR: query_bundle.query_str if query_bundle else None,
            EventPayload.TOP_K: top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:

            def finish(outcome: RerankOutcome[NodeWithScore]) -> list[NodeWithScore]:
                new_nodes = self._nodes(outcome)
                end: dict[str, Any] = {EventPayload.NODES: new_nodes}
                if outcome.error is not None:
                    end[EventPayload.EXCEPTION] = outcome.error
                    dispatcher.event(ExceptionEvent(exception=outcome.error))
                event.on_end(payload=end)
                dispatcher.event(ReRankEndEvent(nodes=new_nodes))
                return new_nodes

            yield finish

    def _reranked(self, node: NodeWithScore, result: RerankResult) -> NodeWithScore:
        added = result_metadata(result)
        if self.keep_retrieval_score:
            added[RETRIEVAL_SCORE_KEY] = node.score
        return NodeWithScore(node=_with_metadata(node.node, added), score=result.score)


def _with_metadata(inner: BaseNode, added: dict[str, Any]) -> BaseNode:
    # A shallow copy with deep-copied metadata and new exclusion lists: the caller's node
    # is untouched, and the added keys never leak into what an LLM or embedding model reads.
    return inner.model_copy(
        update={
            "metadata": {**copy.deepcopy(inner.metadata), **added},
            "excluded_llm_metadata_keys": _excluding(inner.excluded_llm_metadata_keys, list(added)),
            "excluded_embed_metadata_keys": _excluding(
                inner.excluded_embed_metadata_keys, list(added)
            ),
        }
    )


def _query_str(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError(
            "RerankKitPostprocessor needs a query: pass query_bundle or query_str to "
            "postprocess_nodes"
        )
    return query_bundle.query_str
