"""Issue 10: the rerank step is visible to the frameworks' tracing.

LangChain: a real ``BaseCallbackHandler`` on ``retriever.invoke`` / ``ainvoke`` sees the
compressor's run as a child of the retriever's run, with its inputs, outputs and errors, and
each LLM call of an LLM reranker as a child of that run (also across the sync path's worker
threads); ``astream_events(version="v2")`` shows the same tree. LlamaIndex: with a real span
handler, the LLM reranker's ``complete`` spans nest under the postprocessor on ``query`` and
``aquery``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import UUID

import pytest
from framework_fakes import FixedRetriever
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel

from langchain_rerankkit import RerankKitCompressor, hybrid_compressor
from rerankkit.testing import FunctionReranker, KeywordReranker

TEXTS = ["dogs bark at night", "cats purr when happy", "cats sleep all day", "fish swim"]


def documents() -> list[Document]:
    return [Document(text, id=f"d{i}") for i, text in enumerate(TEXTS)]


class Recorder(BaseCallbackHandler):
    """Every run start/end/error with its parent, as LangSmith or Langfuse would see them."""

    def __init__(self) -> None:
        self.runs: dict[UUID, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def _start(self, kind: str, run_id: UUID, parent: UUID | None, **fields: Any) -> None:
        with self.lock:
            self.runs[run_id] = {"kind": kind, "parent": parent, **fields}

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kw: Any) -> None:
        self._start("retriever", run_id, kw.get("parent_run_id"), name=kw.get("name"))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self._start(
            "chain",
            run_id,
            kw.get("parent_run_id"),
            name=kw.get("name"),
            inputs=inputs,
            metadata=kw.get("metadata"),
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id]["outputs"] = outputs

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id]["error"] = error

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any
    ) -> None:
        prompt = messages[0][0].content
        self._start("llm", run_id, kw.get("parent_run_id"), prompt=prompt)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id]["answer"] = response.generations[0][0].text

    def of(self, kind: str) -> dict[UUID, dict[str, Any]]:
        return {run_id: run for run_id, run in self.runs.items() if run["kind"] == kind}


def the_rerank_run(recorder: Recorder) -> tuple[UUID, dict[str, Any]]:
    (retriever_id,) = [i for i, r in recorder.of("retriever").items() if r["parent"] is None]
    [(run_id, run)] = [
        (i, r) for i, r in recorder.of("chain").items() if r["name"] == "RerankKitCompressor"
    ]
    assert run["parent"] == retriever_id
    return run_id, run


async def invoke(retriever: Any, query: str, mode: str, recorder: Recorder) -> list[Document]:
    config = {"callbacks": [recorder]}
    if mode == "sync":
        return await asyncio.to_thread(retriever.invoke, query, config=config)
    return list(await retriever.ainvoke(query, config=config))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_listwise_llm_calls_are_children_of_the_rerank_run(mode: str) -> None:
    llm = FakeListChatModel(responses=["[2] > [3] > [1]"])
    compressor = RerankKitCompressor.from_llm(llm, top_n=2)
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=documents())
    )
    recorder = Recorder()
    out = await invoke(retriever, "why do cats purr", mode, recorder)
    assert [d.id for d in out] == ["d1", "d2"]
    run_id, run = the_rerank_run(recorder)
    assert run["inputs"] == {"query": "why do cats purr", "documents": 4}
    assert run["metadata"]["reranker"] == "LLMListwiseReranker" and run["metadata"]["top_n"] == 2
    assert run["outputs"] == {
        "documents": [
            {"id": d.id, "index": int(d.id[1:]), "relevance_score": d.metadata["relevance_score"]}
            for d in out
        ],
        "reranked": True,
    }
    (llm_run,) = recorder.of("llm").values()
    assert llm_run["parent"] == run_id
    assert "why do cats purr" in llm_run["prompt"] and llm_run["answer"] == "[2] > [3] > [1]"


async def test_pointwise_llm_calls_from_worker_threads_are_children(mode: str) -> None:
    # The sync path sends each call to a thread pool: the run's context must go with it.
    answers = ["no", "yes", "yes", "no"]
    llm = FakeListChatModel(responses=answers)
    compressor = RerankKitCompressor.from_llm(llm, method="pointwise", top_n=2, max_concurrency=4)
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=documents())
    )
    recorder = Recorder()
    out = await invoke(retriever, "cats", mode, recorder)
    assert len(out) == 2
    run_id, _ = the_rerank_run(recorder)
    llm_runs = recorder.of("llm").values()
    assert len(llm_runs) == len(TEXTS)
    assert {run["parent"] for run in llm_runs} == {run_id}


async def test_hybrid_compressor_takes_a_chat_model_and_traces_it(mode: str) -> None:
    llm = FakeListChatModel(responses=["[2] > [1]"])
    compressor = hybrid_compressor(KeywordReranker(), rerank_top_n=2, llm_reranker=llm, llm_top_n=1)
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=documents())
    )
    recorder = Recorder()
    out = await invoke(retriever, "cats purr", mode, recorder)
    # keyword keeps d1 (2 words) and d2 (1 word); the LLM puts its [2] (d2) first
    assert [d.id for d in out] == ["d2"]
    assert list(out[0].metadata["stage_scores"]) == [1.0, 1.0]
    run_id, run = the_rerank_run(recorder)
    assert run["metadata"]["reranker"] == "CascadeReranker"
    (llm_run,) = recorder.of("llm").values()
    assert llm_run["parent"] == run_id


async def test_an_error_ends_the_run_with_the_error(mode: str) -> None:
    def broken(query: str, document: str) -> float:
        raise RuntimeError("model fell over")

    # the default falls back (tests/test_adapter_failures.py); "raise" lets it through
    compressor = RerankKitCompressor(reranker=FunctionReranker(broken), on_reranker_error="raise")
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=documents())
    )
    recorder = Recorder()
    with pytest.raises(RuntimeError, match="model fell over"):
        await invoke(retriever, "cats", mode, recorder)
    _, run = the_rerank_run(recorder)
    assert isinstance(run["error"], RuntimeError) and "outputs" not in run


async def test_empty_query_run_says_not_reranked(mode: str) -> None:
    compressor = RerankKitCompressor(reranker=KeywordReranker(), top_n=2)
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=documents())
    )
    recorder = Recorder()
    out = await invoke(retriever, " ", mode, recorder)
    _, run = the_rerank_run(recorder)
    assert run["outputs"] == {
        "documents": [{"id": "d0", "index": 0}, {"id": "d1", "index": 1}],
        "reranked": False,
    }
    assert [d.metadata for d in out] == [{"reranked": False}] * 2


async def test_astream_events_v2_shows_the_rerank_run_and_its_llm_call() -> None:
    from langchain_core.runnables import RunnableLambda

    llm = FakeListChatModel(responses=["[2] > [1]"])
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankKitCompressor.from_llm(llm, top_n=1),
        base_retriever=FixedRetriever(docs=documents()[:2]),
    )
    chain = retriever | RunnableLambda(lambda docs: docs[0].page_content)
    events = [e async for e in chain.astream_events("cats", version="v2")]
    starts = {e["name"]: e for e in events if e["event"].endswith("_start")}
    rerank = starts["RerankKitCompressor"]
    assert rerank["event"] == "on_chain_start"
    assert rerank["data"]["input"] == {"query": "cats", "documents": 2}
    assert starts["ContextualCompressionRetriever"]["run_id"] in rerank["parent_ids"]
    chat = starts["FakeListChatModel"]
    assert chat["event"] == "on_chat_model_start" and rerank["run_id"] in chat["parent_ids"]
    (end,) = [e for e in events if e["event"] == "on_chain_end" and e["name"] == rerank["name"]]
    assert end["data"]["output"]["documents"] == [{"id": "d1", "index": 1, "relevance_score": 1.0}]
    assert events[-1]["data"]["output"] == "cats purr when happy"


# -- LlamaIndex ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["query", "aquery"])
async def test_llamaindex_llm_spans_nest_under_the_postprocessor(mode: str) -> None:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
    from llama_index.core.llms import CompletionResponse, MockLLM

    from llamaindex_rerankkit import RerankKitPostprocessor

    class RankingLLM(MockLLM):  # a real LlamaIndex LLM class whose answer is a ranking
        def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
            return CompletionResponse(text="[2] > [1]")

        async def acomplete(
            self, prompt: str, formatted: bool = False, **kw: Any
        ) -> CompletionResponse:
            return CompletionResponse(text="[2] > [1]")

    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text=t) for t in TEXTS[:2]], embed_model=MockEmbedding(embed_dim=8)
    )
    post = RerankKitPostprocessor.from_llm(RankingLLM(), top_n=1)
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2, node_postprocessors=[post])
    handler = SimpleSpanHandler()
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        if mode == "query":
            await asyncio.to_thread(engine.query, "cats")
        else:
            await engine.aquery("cats")
    finally:
        root.span_handlers.remove(handler)
    spans = {span.id_: span for span in handler.completed_spans}

    def ancestors(span_id: str) -> list[str]:
        chain = []
        while span_id in spans and spans[span_id].parent_id:
            span_id = spans[span_id].parent_id
            chain.append(span_id.split("-")[0])
        return chain

    ranking = [i for i in spans if i.startswith("RankingLLM.")]
    assert ranking, sorted(spans)
    for span_id in ranking:
        chain = ancestors(span_id)
        assert any(name.startswith("RerankKitPostprocessor.") for name in chain), chain
        assert any(name.startswith("RetrieverQueryEngine.") for name in chain), chain
