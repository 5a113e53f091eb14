"""RerankKitPostprocessor inside real LlamaIndex query engines, query and aquery.

The index is a real VectorStoreIndex over a deterministic bag-of-words embedding written
here; the reranker is a fake whose relevance grades are written here, so every expected order
is computed from the retriever's own output. MockLLM echoes its prompt, which shows what the
LLM was given: the reranked context, in order, with no scores leaking into it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from framework_fakes import EventLog, recording
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit.testing import FunctionReranker

QUERY = "how do heat pumps keep a house warm in cold winters"

# (title, text, hidden relevance grade to QUERY)
CORPUS = [
    ("basics", "A heat pump moves heat from cold outdoor air into the house.", 3),
    ("cold", "Modern heat pumps keep working in cold winters down to minus 25 C.", 4),
    ("cost", "Heat pumps cost more to install than gas boilers.", 1),
    ("boiler", "A gas boiler burns fuel to warm the house in winter.", 2),
    ("insulation", "Insulation keeps a house warm and cuts heat loss in cold weather.", 2),
    ("solar", "Solar panels make most power in summer, little in winters.", 0),
    ("wind", "Wind turbines need steady wind to pay off.", 0),
    ("fridge", "A fridge is a heat pump that moves heat out of a cold box.", 1),
    ("ev", "Electric cars lose range in cold winters.", 0),
    ("noise", "Outdoor heat pump units hum quietly at night.", 1),
]
GRADE = {text: grade for _, text, grade in CORPUS}
K = 6  # first-stage depth


class BagOfWordsEmbedding(BaseEmbedding):
    """Hashed word counts: deterministic and offline, and similar texts really score higher."""

    dim: int = 128

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return vector

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


def content(model_text: str) -> str:
    """The node text inside what the model reads (EMBED mode prefixes 'title: ...')."""
    return model_text.rsplit("\n\n", 1)[-1]


def graded(seen: list[str] | None = None) -> FunctionReranker:
    def grade(query: str, text: str) -> float:
        if seen is not None:
            seen.append(text)
        return float(GRADE[content(text)])

    return FunctionReranker(grade)


def by_grade(candidates: list[NodeWithScore]) -> list[NodeWithScore]:
    return sorted(candidates, key=lambda n: -GRADE[n.node.get_content()])  # stable, like the core


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    docs = [
        Document(
            text=text,
            metadata={"title": title, "internal": "x"},
            excluded_embed_metadata_keys=["internal"],
        )
        for title, text, _ in CORPUS
    ]
    return VectorStoreIndex.from_documents(docs, embed_model=BagOfWordsEmbedding())


@pytest.fixture
def recorder() -> Iterator[EventLog]:
    with recording(ReRankStartEvent, ReRankEndEvent) as log:
        yield log


async def ask(engine: Any, mode: str) -> Response:
    return engine.query(QUERY) if mode == "query" else await engine.aquery(QUERY)


@pytest.mark.parametrize("mode", ["query", "aquery"])
async def test_as_query_engine_reranks_what_the_retriever_found(
    index: VectorStoreIndex, mode: str
) -> None:
    candidates = index.as_retriever(similarity_top_k=K).retrieve(QUERY)
    assert len(candidates) == K
    expected = by_grade(candidates)[:3]
    retrieval_score = {n.node.get_content(): n.score for n in candidates}

    seen: list[str] = []
    post = RerankKitPostprocessor(reranker=graded(seen), top_n=3, keep_retrieval_score=True)
    engine = index.as_query_engine(similarity_top_k=K, node_postprocessors=[post], llm=MockLLM())
    response = await ask(engine, mode)

    texts = [n.node.get_content() for n in response.source_nodes]
    assert texts == [n.node.get_content() for n in expected]
    assert [n.score for n in response.source_nodes] == [float(GRADE[t]) for t in texts]
    for node in response.source_nodes:
        metadata = node.node.metadata
        assert metadata["relevance_score"] == node.score
        retrieved = retrieval_score[node.node.get_content()]
        assert metadata["retrieval_score"] == pytest.approx(retrieved)
        assert metadata["title"] in {title for title, _, _ in CORPUS}
    # The model read the EMBED view of each candidate: metadata it may see, not excluded keys.
    assert sorted(content(t) for t in seen) == sorted(n.node.get_content() for n in candidates)
    assert all(t.startswith("title: ") and "internal" not in t for t in seen)
    # MockLLM echoes its prompt: the context is the reranked nodes in order, with no scores.
    prompt = str(response)
    positions = [prompt.index(text) for text in texts]
    assert positions == sorted(positions)
    assert "relevance_score" not in prompt
    assert "retrieval_score" not in prompt


@pytest.mark.parametrize("mode", ["query", "aquery"])
async def test_retriever_query_engine_emits_events_and_callbacks(
    index: VectorStoreIndex, recorder: EventLog, mode: str
) -> None:
    debug = LlamaDebugHandler()
    retriever = index.as_retriever(similarity_top_k=K)
    candidates = retriever.retrieve(QUERY)
    post = RerankKitPostprocessor(reranker=graded(), top_n=2, reorder="lost_in_the_middle")
    engine = RetrieverQueryEngine.from_args(
        retriever,
        llm=MockLLM(),
        node_postprocessors=[post],
        callback_manager=CallbackManager([debug]),
    )
    response = await ask(engine, mode)

    best_two = [n.node.get_content() for n in by_grade(candidates)[:2]]
    returned = [n.node.get_content() for n in response.source_nodes]
    assert returned == best_two  # lost-in-the-middle leaves two items in place

    start, end = recorder.seen
    assert isinstance(start, ReRankStartEvent) and isinstance(end, ReRankEndEvent)
    assert start.query.query_str == QUERY
    assert [n.node.get_content() for n in start.nodes] == [n.node.get_content() for n in candidates]
    assert start.top_n == 2
    assert start.model_name == "FunctionReranker"  # a readable name, not the repr
    assert [n.node.get_content() for n in end.nodes] == returned

    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert pair[0].payload[EventPayload.QUERY_STR] == QUERY
    assert pair[0].payload[EventPayload.TOP_K] == 2
    assert [n.node.get_content() for n in pair[1].payload[EventPayload.NODES]] == returned


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_empty_input_still_emits_every_event(recorder: EventLog, mode: str) -> None:
    debug = LlamaDebugHandler()
    reranker = graded()
    post = RerankKitPostprocessor(
        reranker=reranker, top_n=None, callback_manager=CallbackManager([debug])
    )
    if mode == "sync":
        out = post.postprocess_nodes([], query_str=QUERY)
    else:
        out = await post.apostprocess_nodes([], query_str=QUERY)
    assert out == []
    assert reranker.calls == 0
    assert [type(e) for e in recorder.seen] == [ReRankStartEvent, ReRankEndEvent]
    assert recorder.seen[0].top_n == 0 and recorder.seen[1].nodes == []
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert pair[1].payload[EventPayload.NODES] == []


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_query_is_required(recorder: EventLog, mode: str) -> None:
    reranker = graded()
    post = RerankKitPostprocessor(reranker=reranker)
    nodes = [NodeWithScore(node=TextNode(text=CORPUS[0][1]), score=0.5)]
    with pytest.raises(ValueError, match="needs a query"):
        if mode == "sync":
            post.postprocess_nodes(nodes)
        else:
            await post.apostprocess_nodes(nodes)
    assert reranker.calls == 0
    assert recorder.seen == []  # nothing started, so nothing half-reported


async def test_a_failing_reranker_ends_the_callback_event_with_the_error(
    recorder: EventLog,
) -> None:
    debug = LlamaDebugHandler()

    def broken(query: str, text: str) -> float:
        raise RuntimeError("model exploded")

    post = RerankKitPostprocessor(
        reranker=FunctionReranker(broken),
        callback_manager=CallbackManager([debug]),
        on_reranker_error="raise",  # the default falls back: tests/test_adapter_failures.py
    )
    nodes = [NodeWithScore(node=TextNode(text="x"), score=0.5)]
    with pytest.raises(RuntimeError, match="model exploded"):
        await post.apostprocess_nodes(nodes, query_str=QUERY)
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert isinstance(pair[1].payload[EventPayload.EXCEPTION], RuntimeError)
    assert [type(e) for e in recorder.seen] == [ReRankStartEvent]
    assert nodes[0].score == 0.5


def test_serialises_its_fields_and_the_reranker_as_a_spec() -> None:
    from rerankkit.testing import KeywordReranker

    post = RerankKitPostprocessor(reranker=KeywordReranker(), top_n=4, score_threshold=0.5)
    data = post.to_dict()
    assert data["class_name"] == "RerankKitPostprocessor"
    fields = ("top_n", "score_threshold", "keep_retrieval_score", "reorder")
    assert {k: data[k] for k in fields} == {
        "top_n": 4,
        "score_threshold": 0.5,
        "keep_retrieval_score": False,
        "reorder": "none",
    }
    assert data["reranker"] == "keyword:" and "_reranker" not in data
    with pytest.raises(Exception, match="reranker cannot be serialized: FunctionReranker"):
        RerankKitPostprocessor(reranker=graded()).to_dict()  # no spec form: says so


@pytest.mark.parametrize("mode", ["query", "aquery"])
async def test_real_tiny_cross_encoder_by_path(
    index: VectorStoreIndex, tiny_cross_encoder: Path, mode: str
) -> None:
    from rerankkit import CrossEncoderReranker

    retriever = index.as_retriever(similarity_top_k=K)
    candidates = retriever.retrieve(QUERY)
    direct = CrossEncoderReranker(tiny_cross_encoder).rerank(
        QUERY, [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in candidates], top_n=3
    )
    post = RerankKitPostprocessor(reranker=str(tiny_cross_encoder), top_n=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), node_postprocessors=[post])
    response = await ask(engine, mode)
    assert [n.node.get_content() for n in response.source_nodes] == [
        candidates[r.index].node.get_content() for r in direct
    ]
    assert [n.score for n in response.source_nodes] == pytest.approx(
        [r.score for r in direct], abs=1e-6
    )
