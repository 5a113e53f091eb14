"""LangChain and LlamaIndex models as rerankkit LLMs, fed scripted (often bad) answers."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.documents import Document
from langchain_core.language_models import (
    FakeListChatModel,
    FakeListLLM,
    GenericFakeChatModel,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.llms.types import (
    CompletionResponse,
    LLMMetadata,
    LogProb,
)
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.schema import NodeWithScore, TextNode
from pydantic import Field, PrivateAttr

from langchain_rerankkit import RerankKitCompressor
from langchain_rerankkit._llm import as_rerankkit_llm as lc_llm
from langchain_rerankkit._llm import top_logprobs_from_metadata
from llamaindex_rerankkit import RerankKitPostprocessor
from llamaindex_rerankkit._llm import as_rerankkit_llm as li_llm
from llamaindex_rerankkit._llm import top_logprobs_from_response
from rerankkit import LLMListwiseReranker, LLMPointwiseReranker


class _Script:
    """An endless iterator over scripted answers; exception steps are raised, not returned."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps, self.position = steps, 0
        self.lock = threading.Lock()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        with self.lock:
            step = self.steps[min(self.position, len(self.steps) - 1)]
            self.position += 1
        if isinstance(step, BaseException):
            raise step
        return step


def scripted_chat(steps: list[Any]) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=_Script(steps))


class ScriptedMockLLM(MockLLM):
    """A LlamaIndex MockLLM that answers from a script (raising the exception steps)."""

    _script: _Script = PrivateAttr()

    def __init__(self, steps: list[Any]) -> None:
        super().__init__()
        self._script = _Script(steps)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted-mock")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        step = next(self._script)
        return step if isinstance(step, CompletionResponse) else CompletionResponse(text=step)


DOCS = ["alpha text", "beta text", "gamma text", "delta text"]


# --- LangChain -------------------------------------------------------------------------------


def test_langchain_chat_llm_and_completion_llm_become_completions() -> None:
    assert lc_llm(FakeListChatModel(responses=["[2] > [1]"])).complete("p").text == "[2] > [1]"
    assert lc_llm(FakeListLLM(responses=["3, 1"])).complete("p").text == "3, 1"
    with pytest.raises(TypeError, match="BaseLanguageModel"):
        lc_llm(lambda p: p)  # type: ignore[arg-type]


async def test_langchain_async_path_uses_ainvoke() -> None:
    llm = lc_llm(FakeListChatModel(responses=["[2] > [1]"]))
    assert (await llm.acomplete("p")).text == "[2] > [1]"
    assert (await lc_llm(FakeListLLM(responses=["no"])).acomplete("p")).text == "no"


def _openai_logprobs(p_yes: float) -> dict[str, Any]:
    top = [
        {"token": "Yes", "logprob": math.log(p_yes), "bytes": [89]},
        {"token": "No", "logprob": math.log(1 - p_yes), "bytes": [78]},
    ]
    return {
        "content": [
            {"token": "Yes", "logprob": top[0]["logprob"], "bytes": [89], "top_logprobs": top}
        ],
        "refusal": None,
    }


def test_openai_shaped_logprobs_give_p_yes() -> None:
    messages = [
        AIMessage(content="Yes", response_metadata={"logprobs": _openai_logprobs(p)})
        for p in (0.3, 0.9, 0.6)
    ]
    reranker = LLMPointwiseReranker(lc_llm(scripted_chat(messages)), max_concurrency=1)
    assert reranker.score("q", DOCS[:3]) == pytest.approx([0.3, 0.9, 0.6])


def test_logprob_payload_shapes() -> None:
    legacy = {
        "tokens": [" yes"],
        "token_logprobs": [-0.1],
        "top_logprobs": [{" yes": -0.1, " no": -2.0}],
    }
    assert top_logprobs_from_metadata(legacy) == [{" yes": -0.1, " no": -2.0}]
    bare = [{"token": "No", "logprob": -0.5, "top_logprobs": None}]
    assert top_logprobs_from_metadata(bare) == [{"No": -0.5}]
    for nothing in (None, {}, [], "text", [{"no": "token key"}], {"content": None}):
        assert top_logprobs_from_metadata(nothing) is None


class KwargsRecordingChat(BaseChatModel):
    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "kwargs-recording"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append(kwargs)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="yes"))])


def test_top_logprobs_are_requested_from_the_model() -> None:
    model = KwargsRecordingChat()
    assert lc_llm(model, top_logprobs=5).complete("p").text == "yes"
    assert model.seen[-1] == {"logprobs": True, "top_logprobs": 5}
    with pytest.raises(ValueError, match="top_logprobs"):
        lc_llm(FakeListLLM(responses=["x"]), top_logprobs=5)


def test_compressor_from_llm_listwise_and_pointwise() -> None:
    docs = [Document(page_content=t, metadata={"n": i}, id=f"id{i}") for i, t in enumerate(DOCS)]
    listwise = RerankKitCompressor.from_llm(
        FakeListChatModel(responses=["<think>...</think>[3] > [1] > [3] > [9]"]),
        method="listwise",
        top_n=2,
    )
    out = listwise.compress_documents(docs, "q")
    assert [d.id for d in out] == ["id2", "id0"]
    assert [d.metadata["relevance_score"] for d in out] == [1.0, 0.5]
    assert out[0].metadata["n"] == 2 and "relevance_score" not in docs[2].metadata
    pointwise = RerankKitCompressor.from_llm(
        FakeListChatModel(responses=["No", "Yes"]),
        method="pointwise",
        top_n=None,
        max_concurrency=1,
    )
    assert [d.id for d in pointwise.compress_documents(docs[:2], "q")] == ["id1", "id0"]


async def test_compressor_from_llm_async() -> None:
    docs = [Document(page_content=t) for t in DOCS]
    compressor = RerankKitCompressor.from_llm(
        FakeListChatModel(responses=["4, 2"]), method="listwise", top_n=3
    )
    out = await compressor.acompress_documents(docs, "q")
    assert [d.page_content for d in out] == ["delta text", "beta text", "alpha text"]


ANSWERS = st.one_of(
    st.text(max_size=30),
    st.lists(st.integers(-2, 12), max_size=12).map(lambda ids: " > ".join(f"[{i}]" for i in ids)),
    st.lists(st.integers(1, 6), max_size=6).map(
        lambda ids: "<think>" + ", ".join(map(str, ids)) + "</think>" + ", ".join(map(str, ids))
    ),
    st.sampled_from(["Yes", "no", "YES.", "Rating: 3"]),
    st.sampled_from([RuntimeError("provider down"), TimeoutError("slow"), ValueError("bad")]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 12),
    steps=st.lists(ANSWERS, min_size=1, max_size=8),
    method=st.sampled_from(["listwise", "pointwise", "rating"]),
)
def test_langchain_random_answers_never_lose_or_duplicate(n: int, steps: list, method: str) -> None:
    kwargs: dict[str, Any] = {"backoff": 0.0, "max_retries": 1}
    if method == "listwise":
        kwargs.update(window_size=4, stride=2)
    compressor = RerankKitCompressor.from_llm(
        scripted_chat(steps), method=method, top_n=None, **kwargs
    )
    docs = [Document(page_content=f"doc {i}", id=str(i)) for i in range(n)]
    out = compressor.compress_documents(docs, "q")
    assert sorted(int(d.id) for d in out) == list(range(n))


# --- LlamaIndex ------------------------------------------------------------------------------


def test_llamaindex_llm_and_logprobs() -> None:
    assert li_llm(MockLLM()).complete("echo me").text == "echo me"
    response = CompletionResponse(
        text="Yes",
        logprobs=[
            [
                LogProb(token="Yes", logprob=math.log(0.8)),
                LogProb(token="No", logprob=math.log(0.2)),
            ]
        ],
    )
    reranker = LLMPointwiseReranker(li_llm(ScriptedMockLLM([response])))
    assert reranker.score("q", ["a"]) == pytest.approx([0.8])
    assert top_logprobs_from_response(None) is None and top_logprobs_from_response([[]]) is None
    with pytest.raises(TypeError, match="LlamaIndex LLM"):
        li_llm("gpt-4o")  # type: ignore[arg-type]


async def test_llamaindex_async_path() -> None:
    llm = li_llm(ScriptedMockLLM(["[2] > [1]"]))
    assert (await llm.acomplete("p")).text == "[2] > [1]"


def _nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(DOCS)
    ]


def test_postprocessor_from_llm_listwise_and_rating() -> None:
    post = RerankKitPostprocessor.from_llm(
        ScriptedMockLLM(["[4] > [2]"]), method="listwise", top_n=2
    )
    out = post.postprocess_nodes(_nodes(), query_str="q")
    assert [n.node.node_id for n in out] == ["n3", "n1"] and [n.score for n in out] == [1.0, 0.5]
    rating = RerankKitPostprocessor.from_llm(
        ScriptedMockLLM(["2", "Rating: 9", "7/10", "nonsense"]),
        method="rating",
        top_n=None,
        max_concurrency=1,
    )
    out = rating.postprocess_nodes(_nodes(), query_str="q")
    assert [(n.node.node_id, n.score) for n in out] == [
        ("n1", 9.0),
        ("n2", 7.0),
        ("n0", 2.0),
        ("n3", 2.0),  # unparseable: the lowest judged rating, flagged
    ]


async def test_postprocessor_from_llm_async() -> None:
    post = RerankKitPostprocessor.from_llm(ScriptedMockLLM(["3 1"]), method="listwise", top_n=2)
    out = await post.apostprocess_nodes(_nodes(), query_str="q")
    assert [n.node.node_id for n in out] == ["n2", "n0"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 12),
    steps=st.lists(ANSWERS, min_size=1, max_size=8),
    method=st.sampled_from(["listwise", "pointwise", "rating"]),
)
def test_llamaindex_random_answers_never_lose_or_duplicate(
    n: int, steps: list, method: str
) -> None:
    kwargs: dict[str, Any] = {"backoff": 0.0, "max_retries": 1}
    if method == "listwise":
        kwargs.update(window_size=4, stride=2)
    post = RerankKitPostprocessor.from_llm(
        ScriptedMockLLM(steps), method=method, top_n=None, **kwargs
    )
    nodes = [NodeWithScore(node=TextNode(text=f"doc {i}", id_=str(i))) for i in range(n)]
    out = post.postprocess_nodes(nodes, query_str="q")
    assert sorted(int(n.node.node_id) for n in out) == list(range(n))


def test_listwise_reranker_accepts_wrapped_models_directly() -> None:
    reranker = LLMListwiseReranker(lc_llm(FakeListChatModel(responses=["2, 1"])))
    assert [r.index for r in reranker.rerank("q", ["a", "b"])] == [1, 0]
