"""Issue 22, the context step in both adapters: ``prune`` and ``budget_tokens`` on
``RerankKitCompressor`` and ``RerankKitPostprocessor``, sync and async, with their tracing
(a LangChain callback handler; LlamaIndex's callback manager and instrumentation events); a
failing pruner returns the reranked documents unpruned; the caller's objects never change."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from typing import Any
from uuid import UUID

import pytest
from framework_fakes import FixedRetriever, recording
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from langchain_rerankkit import RerankKitCompressor, hybrid_compressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import ContextPruner
from rerankkit.context import approximate_tokens
from rerankkit.testing import FunctionReranker, KeywordReranker

TEXTS = [
    "Dogs bark at night. They guard the house.",
    "Cats purr when happy. Fig. 2 shows a dog. Cats sleep all day.",
    "Fish swim. Cats watch them.",
]
QUERY = "cats"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rebuilt(original: str, spans: list[list[int]]) -> str:
    return " … ".join(original[a:b] for a, b in spans)


def broken_pruner() -> ContextPruner:
    def broken(query: str, text: str) -> float:
        raise RuntimeError("sentence scorer fell over")

    return ContextPruner(FunctionReranker(broken))


# -- LangChain -------------------------------------------------------------------------------


class Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: dict[UUID, dict[str, Any]] = {}

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id] = {"name": kw.get("name"), "metadata": kw.get("metadata")}

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id]["outputs"] = outputs

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id]["error"] = error

    def rerank_run(self) -> dict[str, Any]:
        (run,) = [r for r in self.runs.values() if r["name"] == "RerankKitCompressor"]
        return run


async def retrieve(
    compressor: RerankKitCompressor, docs: list[Document], mode: str
) -> tuple[list[Document], dict[str, Any]]:
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=docs)
    )
    runs = Runs()
    config = {"callbacks": [runs]}
    if mode == "sync":
        out = await asyncio.to_thread(retriever.invoke, QUERY, config=config)
    else:
        out = await retriever.ainvoke(QUERY, config=config)
    return list(out), runs.rerank_run()


async def test_langchain_prunes_into_new_documents_and_traces_it(mode: str) -> None:
    docs = [Document(t, id=f"d{i}", metadata={"tags": ["x"]}) for i, t in enumerate(TEXTS)]
    before = copy.deepcopy(docs)
    compressor = RerankKitCompressor(reranker=KeywordReranker(), top_n=2, prune=True)
    out, run = await retrieve(compressor, docs, mode)

    assert docs == before  # the caller's documents, metadata included, are untouched
    assert [(d.id, d.page_content) for d in out] == [
        ("d1", "Cats purr when happy. … Cats sleep all day."),
        ("d2", "Cats watch them."),
    ]
    for d in out:
        original = TEXTS[int(d.id[1:])]
        assert rebuilt(original, d.metadata["kept_spans"]) == d.page_content
        assert d.metadata["kept_tokens"] == approximate_tokens(d.page_content)
        assert d.metadata["original_tokens"] == approximate_tokens(original)
        assert d.metadata["tags"] == ["x"] and d.metadata["relevance_score"] > 0
        json.dumps(d.metadata, allow_nan=False)
    assert run["metadata"]["prune"] is True and run["metadata"]["budget_tokens"] is None
    assert run["outputs"]["pruned"] is True
    assert [e["kept_tokens"] for e in run["outputs"]["documents"]] == [
        d.metadata["kept_tokens"] for d in out
    ]


async def test_langchain_budget_holds_over_all_documents(mode: str) -> None:
    docs = [Document(t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    compressor = RerankKitCompressor(
        reranker=KeywordReranker(), top_n=None, prune=True, budget_tokens=6
    )
    out, _ = await retrieve(compressor, docs, mode)
    assert sum(d.metadata["kept_tokens"] for d in out) <= 6
    assert [d.page_content for d in out] == [
        "Cats purr when happy."
    ]  # 5 tokens; "Cats watch them." (4) does not fit after it


async def test_langchain_failing_pruner_returns_the_reranked_documents(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    docs = [Document(t, id=f"d{i}") for i, t in enumerate(TEXTS)]
    compressor = RerankKitCompressor(reranker=KeywordReranker(), top_n=2, prune=broken_pruner())
    with caplog.at_level(logging.WARNING, logger="rerankkit.adapting._pruning"):
        out, run = await retrieve(compressor, docs, mode)
    assert [d.page_content for d in out] == [TEXTS[1], TEXTS[2]]  # whole, in rerank order
    for d in out:
        assert d.metadata["pruned"] is False
        assert d.metadata["prune_error"] == "RuntimeError: sentence scorer fell over"
        assert "relevance_score" in d.metadata
    assert isinstance(run["error"], RuntimeError)
    assert len(caplog.records) == 1


def test_langchain_settings_are_checked_where_they_enter() -> None:
    with pytest.raises(ValueError, match="budget_tokens needs prune"):
        RerankKitCompressor(reranker=KeywordReranker(), budget_tokens=100)
    with pytest.raises(ValueError, match="budget_tokens must be >= 1"):
        RerankKitCompressor(reranker=KeywordReranker(), prune=True, budget_tokens=0)
    with pytest.raises(TypeError, match="prune must be"):
        RerankKitCompressor(reranker=KeywordReranker(), prune="yes")


def test_hybrid_compressor_takes_the_same_options() -> None:
    compressor = hybrid_compressor(KeywordReranker(), prune=True, budget_tokens=50)
    assert (compressor.prune, compressor.budget_tokens) == (True, 50)
    docs = [Document(t) for t in TEXTS]
    out = compressor.compress_documents(docs, QUERY)
    assert sum(d.metadata["kept_tokens"] for d in out) <= 50 and out


# -- LlamaIndex ------------------------------------------------------------------------------


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"title": f"T{i}"}), score=0.5)
        for i, t in enumerate(TEXTS)
    ]


async def postprocess(
    post: RerankKitPostprocessor, given: list[NodeWithScore], mode: str
) -> list[NodeWithScore]:
    if mode == "sync":
        return post.postprocess_nodes(given, query_str=QUERY)
    return await post.apostprocess_nodes(given, query_bundle=QueryBundle(QUERY))


async def test_llamaindex_prunes_the_node_text_and_reports_it(mode: str) -> None:
    debug = LlamaDebugHandler()
    post = RerankKitPostprocessor(
        KeywordReranker(), top_n=2, prune=True, callback_manager=CallbackManager([debug])
    )
    given = nodes()
    before = [n.model_dump() for n in given]
    with recording(ReRankStartEvent, ReRankEndEvent, ExceptionEvent) as events:
        out = await postprocess(post, given, mode)

    assert [n.model_dump() for n in given] == before
    assert [(n.node.node_id, n.node.get_content()) for n in out] == [
        ("n1", "Cats purr when happy. … Cats sleep all day."),
        ("n2", "Cats watch them."),
    ]
    for n in out:
        original = TEXTS[int(n.node.node_id[1:])]
        assert rebuilt(original, n.node.metadata["kept_spans"]) == n.node.get_content()
        assert n.score == n.node.metadata["relevance_score"]
        llm_view = n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "kept_spans" not in llm_view and "title: T" in llm_view
    assert [type(e) for e in events.seen] == [ReRankStartEvent, ReRankEndEvent]
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert pair[1].payload is not None and pair[1].payload[EventPayload.NODES] == out


async def test_llamaindex_failing_pruner_keeps_the_nodes_and_ends_with_the_error(mode: str) -> None:
    debug = LlamaDebugHandler()
    post = RerankKitPostprocessor(
        KeywordReranker(),
        top_n=2,
        prune=broken_pruner(),
        budget_tokens=10,
        callback_manager=CallbackManager([debug]),
    )
    with recording(ReRankStartEvent, ReRankEndEvent, ExceptionEvent) as events:
        out = await postprocess(post, nodes(), mode)
    assert [n.node.get_content() for n in out] == [TEXTS[1], TEXTS[2]]
    assert all(n.node.metadata["pruned"] is False for n in out)
    assert [type(e) for e in events.seen] == [ReRankStartEvent, ExceptionEvent, ReRankEndEvent]
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert isinstance(pair[1].payload[EventPayload.EXCEPTION], RuntimeError)  # type: ignore[index]


async def test_llamaindex_budget_and_empty_input(mode: str) -> None:
    post = RerankKitPostprocessor(KeywordReranker(), top_n=None, prune=True, budget_tokens=9)
    out = await postprocess(post, nodes(), mode)
    assert sum(n.node.metadata["kept_tokens"] for n in out) <= 9
    assert await postprocess(post, [], mode) == []
