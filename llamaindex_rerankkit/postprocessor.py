"""``RerankKitPostprocessor``: any rerankkit reranker as a LlamaIndex node postprocessor."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, field_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from llamaindex_rerankkit._llm import as_rerankkit_llm
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
    from llama_index.core.llms import LLM

dispatcher = get_dispatcher(__name__)

RETRIEVAL_SCORE_KEY = "retrieval_score"


def _text(node: NodeWithScore) -> str:
    return node.node.get_content(metadata_mode=MetadataMode.EMBED)


def _excluding(keys: list[str], added: list[str]) -> list[str]:
    return keys + [key for key in added if key not in keys]


class RerankKitPostprocessor(BaseNodePostprocessor):
    """Reranks retrieved nodes with a rerankkit ``Reranker``; a drop-in for the
    ``node_postprocessors`` of query and chat engines.

    Returns new ``NodeWithScore`` objects, best first, whose ``score`` is the rerank score.
    Each carries a copy of its node (same ``node_id``) whose metadata adds
    ``relevance_score``, any backend details (e.g. a chunk span) and, with
    ``keep_retrieval_score``, the retriever's score as ``retrieval_score``. The added keys
    are excluded from the LLM and embedding views of the node, so they never leak into a
    prompt. The caller's nodes keep their scores and metadata.

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

    model_config = ConfigDict(validate_assignment=True)

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

    _reranker: Reranker = PrivateAttr()

    def __init__(self, reranker: Reranker | str | os.PathLike[str], **kwargs: Any) -> None:
        """Build the postprocessor.

        Args:
            reranker: A rerankkit ``Reranker``, or a cross-encoder hub id / local folder
                (loaded once, here, as a ``CrossEncoderReranker``).
            **kwargs: The fields: ``top_n``, ``score_threshold``, ``keep_retrieval_score``,
                ``reorder``, ``callback_manager``.
        """
        super().__init__(**kwargs)
        self._reranker = as_reranker(reranker)

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

    @property
    def reranker(self) -> Reranker:
        """The backend (read-only)."""
        return self._reranker

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        query = _query_str(query_bundle)
        nodes = check_items(nodes, NodeWithScore, "nodes")
        with self._rerank_event(nodes, query_bundle) as finish:
            pairs = rerank_items(
                self._reranker,
                query,
                nodes,
                text=_text,
                top_n=self.top_n,
                score_threshold=self.score_threshold,
                reorder=self.reorder,
            )
            return finish([self._reranked(node, result) for node, result in pairs])

    @dispatcher.span
    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        query = _query_str(query_bundle)
        nodes = check_items(nodes, NodeWithScore, "nodes")
        with self._rerank_event(nodes, query_bundle) as finish:
            pairs = await arerank_items(
                self._reranker,
                query,
                nodes,
                text=_text,
                top_n=self.top_n,
                score_threshold=self.score_threshold,
                reorder=self.reorder,
            )
            return finish([self._reranked(node, result) for node, result in pairs])

    @contextmanager
    def _rerank_event(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> Iterator[Callable[[list[NodeWithScore]], list[NodeWithScore]]]:
        """Start/end instrumentation events and the RERANKING callback event around one call.

        Yields ``finish(new_nodes) -> new_nodes``, which records the result on both channels.
        Every successful call, empty input included, emits start and end; on an error the
        callback event ends with the exception (LlamaIndex's own handling) and no end event
        is dispatched.
        """
        model_name = repr(self._reranker)
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

            def finish(new_nodes: list[NodeWithScore]) -> list[NodeWithScore]:
                event.on_end(payload={EventPayload.NODES: new_nodes})
                dispatcher.event(ReRankEndEvent(nodes=new_nodes))
                return new_nodes

            yield finish

    def _reranked(self, node: NodeWithScore, result: RerankResult) -> NodeWithScore:
        added = result_metadata(result)
        if self.keep_retrieval_score:
            added[RETRIEVAL_SCORE_KEY] = node.score
        inner = node.node
        # A shallow copy with deep-copied metadata and new exclusion lists: the caller's node
        # is untouched, and the scores never leak into what an LLM or embedding model reads.
        new_node = inner.model_copy(
            update={
                "metadata": {**copy.deepcopy(inner.metadata), **added},
                "excluded_llm_metadata_keys": _excluding(
                    inner.excluded_llm_metadata_keys, list(added)
                ),
                "excluded_embed_metadata_keys": _excluding(
                    inner.excluded_embed_metadata_keys, list(added)
                ),
            }
        )
        return NodeWithScore(node=new_node, score=result.score)


def _query_str(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError(
            "RerankKitPostprocessor needs a query: pass query_bundle or query_str to "
            "postprocess_nodes"
        )
    return query_bundle.query_str
