"""The hybrid stack from your LlamaIndex retrievers: BM25 + dense -> RRF -> cross-encoder -> LLM.

``RerankKitFusionRetriever`` is LlamaIndex's ``QueryFusionRetriever`` in
``mode="reciprocal_rerank"`` (same retriever orchestration, optional LLM query generation,
concurrent async retrieval) whose fusion step is rerankkit's reciprocal rank fusion: ranks
start at 1 as in the paper, ``retriever_weights`` count, and the retrievers' nodes keep their
scores. ``hybrid_postprocessor`` is the reranking half (cross-encoder, optionally an LLM on its
survivors); ``hybrid_query_engine`` puts both in a ``RetrieverQueryEngine``.

Example:
    >>> from llama_index.core.retrievers import BaseRetriever
    >>> from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    >>> from rerankkit.testing import KeywordReranker
    >>> class Fixed(BaseRetriever):
    ...     def __init__(self, texts):
    ...         super().__init__()
    ...         self.nodes = [TextNode(text=t, id_=t) for t in texts]
    ...     def _retrieve(self, query_bundle):
    ...         return [NodeWithScore(node=n, score=1.0) for n in self.nodes]
    >>> fusion = RerankKitFusionRetriever([Fixed(["cats purr", "dogs bark"]), Fixed(["cats purr"])])
    >>> post = hybrid_postprocessor(KeywordReranker(), rerank_top_n=1)
    >>> nodes = post.postprocess_nodes(fusion.retrieve("why do cats purr"), query_str="cats purr")
    >>> [(n.node.get_content(), n.score) for n in nodes]
    [('cats purr', 2.0)]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.llms import LLM, MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
from llama_index.core.schema import NodeWithScore

from llamaindex_rerankkit._llm import as_rerankkit_llm
from llamaindex_rerankkit._postprocessor import RerankKitPostprocessor
from rerankkit import Reranker
from rerankkit.adapting import ReorderMode, fuse_items, fusion_fields

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rerankkit.adapting import StageOptions


def _identity(node: NodeWithScore) -> str:
    return node.node.hash  # content and metadata, as QueryFusionRetriever identifies nodes


class RerankKitFusionRetriever(QueryFusionRetriever):
    """``QueryFusionRetriever`` (reciprocal rank) fused by ``rerankkit.reciprocal_rank_fusion``.

    Nodes are identified by ``node.hash`` (content and metadata, as ``QueryFusionRetriever``
    does); a node a retriever returns twice counts once, at its better rank. Each retriever's
    list is taken in the order it returns (best first). Returns new ``NodeWithScore`` objects
    whose ``score`` is the RRF score.

    Args:
        retrievers: Your first-stage retrievers (e.g. ``BM25Retriever``, ``index.as_retriever``).
        similarity_top_k: Fused nodes kept (``None``: all).
        k: RRF constant (``>= 0``).
        retriever_weights: One weight per retriever (default equal).
        num_queries: ``1`` fuses the retrievers for the query as given; more asks ``llm`` for
            ``num_queries - 1`` rewrites and fuses every (query, retriever) list.
        llm: The LLM for query rewrites (only with ``num_queries > 1``).
        use_async: Run the retrievers concurrently in ``retrieve`` (``aretrieve`` always does).
        _names: How errors name ``k``, ``weights`` and ``top_n`` when a helper passes its own
            caller's arguments (``hybrid_query_engine``'s ``fusion_top_n``).
        **kwargs: Other ``QueryFusionRetriever`` arguments (``callback_manager``, ...).

    Raises:
        TypeError, ValueError: A bad ``k``, ``retriever_weights`` or ``similarity_top_k``
            (named), checked by ``rerankkit.adapting.fusion_fields`` as LangChain's twin is.
    """

    def __init__(
        self,
        retrievers: Sequence[BaseRetriever],
        *,
        similarity_top_k: int | None = 100,
        k: float = 60,
        retriever_weights: Sequence[float] | None = None,
        num_queries: int = 1,
        llm: LLM | None = None,
        use_async: bool = False,
        _names: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        retrievers = list(retrievers)
        fusion = fusion_fields(
            len(retrievers),
            k=k,
            weights=retriever_weights,
            top_n=similarity_top_k,
            names={"weights": "retriever_weights", "top_n": "similarity_top_k", **(_names or {})},
        )
        if llm is None and num_queries <= 1:
            llm = MockLLM()  # never called; avoids resolving Settings.llm (an OpenAI default)
        super().__init__(
            retrievers,
            llm=llm,
            mode=FUSION_MODES.RECIPROCAL_RANK,
            similarity_top_k=fusion["top_n"],  # type: ignore[arg-type]  # None: slice keeps all
            num_queries=num_queries,
            use_async=use_async,
            retriever_weights=fusion["weights"],
            **kwargs,
        )
        self.k = fusion["k"]

    def _reciprocal_rerank_fusion(
        self, results: dict[tuple[str, int], list[NodeWithScore]]
    ) -> list[NodeWithScore]:
        weights = [self._retriever_weights[retriever] for _, retriever in results]
        fused = fuse_items(results.values(), key=_identity, k=self.k, weights=weights, top_n=None)
        return [NodeWithScore(node=item.node, score=score) for item, score in fused]


def hybrid_postprocessor(
    reranker: Reranker | str | os.PathLike[str],
    *,
    keep_retrieval_score: bool = False,
    **stages: Unpack[StageOptions],
) -> RerankKitPostprocessor:
    """The reranking stages as one ``RerankKitPostprocessor``.

    ``reranker`` keeps ``rerank_top_n`` (default 10); with ``llm_reranker``, that LLM reranks
    those and keeps ``llm_top_n`` (default 3; a ``CascadeReranker``: node metadata gets
    ``stage_scores``). ``score_threshold`` applies to the last stage's score.

    Args:
        reranker: A rerankkit ``Reranker`` or a cross-encoder name / path.
        keep_retrieval_score: Keep the RRF score in metadata as ``retrieval_score``.
        **stages: ``rerank_top_n``, ``llm_reranker`` (a rerankkit ``Reranker`` or any
            LlamaIndex LLM, e.g. ``OpenAI(...)``, which then ranks listwise), ``llm_top_n``,
            ``score_threshold``, ``reorder`` (``rerankkit.adapting.StageOptions``).

    Raises:
        TypeError, ValueError: A bad stage option (named).

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> hybrid_postprocessor(KeywordReranker(), llm_reranker=KeywordReranker()).top_n
        3
    """
    if isinstance(stages.get("llm_reranker"), LLM):
        stages = {**stages, "llm_reranker": as_rerankkit_llm(stages["llm_reranker"])}
    return RerankKitPostprocessor.from_stages(
        reranker, keep_retrieval_score=keep_retrieval_score, **stages
    )


def hybrid_query_engine(
    retrievers: Sequence[BaseRetriever],
    reranker: Reranker | str | os.PathLike[str],
    *,
    llm: LLM | None = None,
    retriever_weights: Sequence[float] | None = None,
    k: float = 60,
    fusion_top_n: int | None = 100,
    rerank_top_n: int | None = 10,
    llm_reranker: Reranker | LLM | None = None,
    llm_top_n: int | None = 3,
    score_threshold: float | None = None,
    reorder: ReorderMode = "none",
    **engine_kwargs: Any,
) -> RetrieverQueryEngine:
    """BM25 + dense (your retrievers) -> RRF top ``fusion_top_n`` -> ``reranker`` top
    ``rerank_top_n`` -> optional ``llm_reranker`` top ``llm_top_n`` -> answer with ``llm``.

    ``engine.retrieve(QueryBundle(q))`` gives the reranked nodes without answering;
    ``engine.query(q)`` answers from them. ``llm`` is the answering LLM (``None``: LlamaIndex's
    ``Settings.llm``); ``engine_kwargs`` go to ``RetrieverQueryEngine.from_args``.
    ``fusion_top_n=None`` sends every fused node to the reranker. ``llm_reranker`` is a
    rerankkit ``Reranker`` or a LlamaIndex LLM (which then ranks listwise).

    Raises:
        TypeError, ValueError: A bad fusion setting or stage option (named as passed here),
            before any model is loaded.
    """
    retriever = RerankKitFusionRetriever(
        retrievers,
        similarity_top_k=fusion_top_n,
        k=k,
        retriever_weights=retriever_weights,
        _names={"top_n": "fusion_top_n"},  # as this function's caller named it
    )
    postprocessor = hybrid_postprocessor(
        reranker,
        rerank_top_n=rerank_top_n,
        llm_reranker=llm_reranker,
        llm_top_n=llm_top_n,
        score_threshold=score_threshold,
        reorder=reorder,
    )
    return RetrieverQueryEngine.from_args(
        retriever, llm=llm, node_postprocessors=[postprocessor], **engine_kwargs
    )
