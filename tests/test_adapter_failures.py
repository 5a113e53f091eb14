"""A failing reranker never loses the documents in the adapters (``on_reranker_error``).

Real failures from real rerankers: a ``Reranker`` whose model raises ``RuntimeError``, an LLM
listwise reranker whose (scripted) provider keeps failing (``LLMCallError``), and a remote
client pointed at a closed loopback port (``RemoteServiceError``, no retries). Real framework
objects: LangChain's ``ContextualCompressionRetriever`` with a callback handler, LlamaIndex's
``postprocess_nodes`` with a callback manager and an instrumentation handler. Sync and async.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any
from uuid import UUID

import pytest
from framework_fakes import EventLog, FixedRetriever, recording
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import LLMListwiseReranker, Reranker
from rerankkit.errors import LLMCallError, RemoteServiceError
from rerankkit.remote import TEIReranker
from rerankkit.testing import KeywordReranker, ScriptedLLM

TEXTS = ["dogs bark at night", "cats purr when happy", "cats sleep all day", "fish swim"]
QUERY = "cats purr"
LOGGER = "rerankkit.adapting._rerank"


class OutOfMemory(Reranker):
    """A model that fails the way a GPU does when the batch does not fit."""

    def _score(self, query: str, documents: list[str]) -> list[float]:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def failing_llm_reranker() -> LLMListwiseReranker:
    # A provider that answers every call with an error; on_error="raise" makes the listwise
    # reranker raise LLMCallError instead of keeping the window's order.
    llm = ScriptedLLM([ValueError("model 'gpt-x' does not exist")], repeat_last=True)
    return LLMListwiseReranker(llm, on_error="raise", max_retries=0)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_service() -> TEIReranker:
    return TEIReranker(f"http://127.0.0.1:{closed_port()}", max_retries=0, timeout=5.0)


FAILING = {
    "model-RuntimeError": (OutOfMemory, RuntimeError, "RuntimeError: CUDA out of memory."),
    "llm-LLMCallError": (failing_llm_reranker, LLMCallError, "LLMCallError: "),
    "remote-RemoteServiceError": (unreachable_service, RemoteServiceError, "RemoteServiceError: "),
}


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(FAILING))
async def failing(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Reranker, type[Exception], str]]:
    build, error_type, reason = FAILING[request.param]
    reranker = build()
    yield reranker, error_type, reason
    if isinstance(reranker, TEIReranker):
        await reranker.aclose()  # this loop's pool and the sync pool


def strict_json(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


# ---- LangChain -------------------------------------------------------------------------------
class Recorder(BaseCallbackHandler):
    """The rerank run's error and the retriever's result, as a tracer would see them."""

    def __init__(self) -> None:
        self.errors: dict[str, BaseException] = {}
        self.ended: list[str] = []
        self.names: dict[UUID, str] = {}
        self.retrieved: list[Document] | None = None

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.names[run_id] = str(kw.get("name"))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.ended.append(self.names[run_id])

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.errors[self.names[run_id]] = error

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kw: Any) -> None:
        if kw.get("parent_run_id") is None:  # the outer retriever: what the chain receives
            self.retrieved = list(documents)


def documents() -> list[Document]:
    return [
        Document(text, id=f"d{i}", metadata={"source": f"s{i}"}) for i, text in enumerate(TEXTS)
    ]


def retriever_over(compressor: RerankKitCompressor) -> ContextualCompressionRetriever:
    return ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=documents())
    )


async def invoke(retriever: Any, mode: str, recorder: Recorder) -> list[Document]:
    config = {"callbacks": [recorder]}
    if mode == "sync":
        return list(retriever.invoke(QUERY, config=config))
    return list(await retriever.ainvoke(QUERY, config=config))


async def test_langchain_returns_the_documents_unranked_and_reports_the_error(
    failing: tuple[Reranker, type[Exception], str], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    reranker, error_type, reason = failing
    retriever = retriever_over(RerankKitCompressor(reranker=reranker, top_n=3))
    recorder = Recorder()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = await invoke(retriever, mode, recorder)

    assert [d.id for d in out] == ["d0", "d1", "d2"]  # retrieval order, cut to top_n
    assert [d.page_content for d in out] == TEXTS[:3]
    for position, document in enumerate(out):
        assert document.metadata["source"] == f"s{position}"
        assert document.metadata["reranked"] is False
        assert document.metadata["rerank_error"].startswith(reason)
        assert "relevance_score" not in document.metadata
    strict_json([d.metadata for d in out])
    # the rerank run reports the error; the retriever still ends with the documents
    assert isinstance(recorder.errors["RerankKitCompressor"], error_type)
    assert "RerankKitCompressor" not in recorder.ended
    assert recorder.retrieved is not None and [d.id for d in recorder.retrieved] == [
        "d0",
        "d1",
        "d2",
    ]
    (warning,) = [r for r in caplog.records if r.name == LOGGER]
    assert warning.levelno == logging.WARNING and error_type.__name__ in warning.getMessage()


async def test_langchain_raise_setting_raises(
    failing: tuple[Reranker, type[Exception], str], mode: str
) -> None:
    reranker, error_type, _ = failing
    compressor = RerankKitCompressor(reranker=reranker, on_reranker_error="raise")
    recorder = Recorder()
    with pytest.raises(error_type):
        await invoke(retriever_over(compressor), mode, recorder)
    assert isinstance(recorder.errors["RerankKitCompressor"], error_type)
    assert recorder.retrieved is None


def test_langchain_bad_input_still_raises() -> None:
    compressor = RerankKitCompressor(reranker=OutOfMemory())
    with pytest.raises(TypeError, match="query must be a str"):
        compressor.compress_documents(documents(), 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"documents\[1\] must be a Document"):
        compressor.compress_documents([documents()[0], "text"], QUERY)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="on_reranker_error must be one of"):
        RerankKitCompressor(reranker=OutOfMemory(), on_reranker_error="ignore")  # type: ignore[arg-type]


def test_langchain_working_reranker_is_unchanged() -> None:
    out = RerankKitCompressor(reranker=KeywordReranker(), top_n=2).compress_documents(
        documents(), QUERY
    )
    assert [(d.id, d.metadata["relevance_score"]) for d in out] == [("d1", 2.0), ("d2", 1.0)]
    assert all("reranked" not in d.metadata for d in out)


# ---- LlamaIndex ------------------------------------------------------------------------------
@pytest.fixture
def events() -> Iterator[EventLog]:
    with recording() as log:
        yield log


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=1.0 - i / 10)
        for i, text in enumerate(TEXTS)
    ]


async def postprocess(post: RerankKitPostprocessor, given: list[NodeWithScore], mode: str) -> Any:
    if mode == "sync":
        return post.postprocess_nodes(given, query_str=QUERY)
    return await post.apostprocess_nodes(given, query_str=QUERY)


async def test_llamaindex_returns_the_nodes_unranked_and_reports_the_error(
    failing: tuple[Reranker, type[Exception], str],
    mode: str,
    events: EventLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reranker, error_type, reason = failing
    debug = LlamaDebugHandler()
    post = RerankKitPostprocessor(
        reranker=reranker, top_n=3, callback_manager=CallbackManager([debug])
    )
    given = nodes()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = await postprocess(post, given, mode)

    assert [(n.node.node_id, n.score) for n in out] == [("n0", 1.0), ("n1", 0.9), ("n2", 0.8)]
    for node in out:
        assert node.node.metadata["reranked"] is False
        assert node.node.metadata["rerank_error"].startswith(reason)
        assert "rerank_error" not in node.node.get_content(metadata_mode=MetadataMode.LLM)
    assert all(n.node.metadata == {} for n in given)  # the caller's nodes are untouched
    strict_json([json.loads(n.model_dump_json()) for n in out])
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    end = pair[1].payload
    assert end is not None and isinstance(end[EventPayload.EXCEPTION], error_type)
    assert end[EventPayload.NODES] == out
    kinds = [
        type(e)
        for e in events.seen
        if isinstance(e, (ReRankStartEvent, ReRankEndEvent, ExceptionEvent))
    ]
    assert kinds == [ReRankStartEvent, ExceptionEvent, ReRankEndEvent]
    (warning,) = [r for r in caplog.records if r.name == LOGGER]
    assert error_type.__name__ in warning.getMessage()


async def test_llamaindex_raise_setting_raises(
    failing: tuple[Reranker, type[Exception], str], mode: str
) -> None:
    reranker, error_type, _ = failing
    post = RerankKitPostprocessor(reranker=reranker, on_reranker_error="raise")
    with pytest.raises(error_type):
        await postprocess(post, nodes(), mode)


async def test_llamaindex_bad_input_still_raises(mode: str) -> None:
    post = RerankKitPostprocessor(reranker=OutOfMemory())
    with pytest.raises(ValueError, match="needs a query"):
        if mode == "sync":
            post.postprocess_nodes(nodes())
        else:
            await post.apostprocess_nodes(nodes())
    with pytest.raises(TypeError, match=r"nodes\[0\] must be a NodeWithScore"):
        await postprocess(post, ["text"], mode)  # type: ignore[list-item]


# ---- what is never swallowed -----------------------------------------------------------------
class Interrupted(Reranker):
    def _score(self, query: str, documents: list[str]) -> list[float]:
        raise KeyboardInterrupt


class Blocking(Reranker):
    """A model call that waits (bounded) until the test lets it go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def _score(self, query: str, documents: list[str]) -> list[float]:
        self.started.set()
        self.release.wait(timeout=10)
        return [0.0] * len(documents)


def test_keyboard_interrupt_is_never_a_fallback() -> None:
    with pytest.raises(KeyboardInterrupt):
        RerankKitCompressor(reranker=Interrupted()).compress_documents(documents(), QUERY)
    with pytest.raises(KeyboardInterrupt):
        RerankKitPostprocessor(reranker=Interrupted()).postprocess_nodes(nodes(), query_str=QUERY)


@pytest.mark.parametrize("adapter", ["langchain", "llamaindex"])
async def test_cancelling_the_task_cancels_it(adapter: str) -> None:
    reranker = Blocking()
    call: Coroutine[Any, Any, Any]
    if adapter == "langchain":
        call = RerankKitCompressor(reranker=reranker).acompress_documents(documents(), QUERY)
    else:
        call = RerankKitPostprocessor(reranker=reranker).apostprocess_nodes(
            nodes(), query_str=QUERY
        )
    task = asyncio.ensure_future(call)
    try:
        for _ in range(1000):  # at most 10 s
            if reranker.started.is_set() or task.done():
                break
            await asyncio.sleep(0.01)
        assert reranker.started.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        reranker.release.set()
