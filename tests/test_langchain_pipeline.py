"""RerankKitCompressor inside real LangChain pipelines, sync (invoke) and async (ainvoke).

The first stage is real (BM25 over rank_bm25, or an in-memory vector store); the reranker is a
fake whose relevance grades are written in this file, so every expected order is computed
here from the first stage's own output, independently of the adapter.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import CharacterTextSplitter

from langchain_rerankkit import RerankKitCompressor
from rerankkit.compose._reorder import lost_in_the_middle
from rerankkit.testing import FunctionReranker

QUERY = "how do heat pumps keep a house warm in cold winters"

# (id, text, metadata, hidden relevance grade to QUERY)
CORPUS = [
    ("hp-basics", "A heat pump moves heat from cold outdoor air into the house.", {"src": "a"}, 3),
    ("hp-cold", "Modern heat pumps keep working in cold winters down to minus 25 C.", {}, 4),
    ("hp-cost", "Heat pumps cost more to install than gas boilers.", {"src": "shop"}, 1),
    ("boiler", "A gas boiler burns fuel to warm the house in winter.", {"src": "guide"}, 2),
    ("insul", "Insulation keeps a house warm and cuts heat loss in cold weather.", {}, 2),
    ("solar", "Solar panels make most power in summer, little in winters.", {"src": "shop"}, 0),
    ("wind", "Wind turbines need steady wind to pay off.", {"src": "news"}, 0),
    ("fridge", "A fridge is a heat pump that moves heat out of a cold box.", {"src": "trivia"}, 1),
    ("ev", "Electric cars lose range in cold winters.", {"src": "news"}, 0),
    ("hp-noise", "Outdoor heat pump units hum quietly at night.", {"src": "test"}, 1),
]
GRADE = {text: grade for _, text, _, grade in CORPUS}


def documents() -> list[Document]:
    return [Document(page_content=t, metadata=dict(m), id=i) for i, t, m, _ in CORPUS]


def graded() -> FunctionReranker:
    return FunctionReranker(lambda query, text: float(GRADE[text]))


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def by_grade(candidates: list[Document]) -> list[Document]:
    return sorted(candidates, key=lambda d: -GRADE[d.page_content])  # stable, like the core


@pytest.fixture
def bm25() -> BM25Retriever:
    return BM25Retriever.from_documents(documents(), k=6, preprocess_func=words)


async def test_contextual_compression_over_bm25(bm25: BM25Retriever) -> None:
    candidates = bm25.invoke(QUERY)
    assert len(candidates) == 6
    expected = by_grade(candidates)[:3]
    stored_before = [d.model_dump() for d in bm25.docs]

    retriever = ContextualCompressionRetriever(
        base_compressor=RerankKitCompressor(reranker=graded(), top_n=3), base_retriever=bm25
    )
    for out in (retriever.invoke(QUERY), await retriever.ainvoke(QUERY)):
        assert [d.id for d in out] == [d.id for d in expected]
        assert [d.metadata["relevance_score"] for d in out] == [
            float(GRADE[d.page_content]) for d in expected
        ]
        assert [{k: v for k, v in d.metadata.items() if k != "relevance_score"} for d in out] == [
            d.metadata for d in expected
        ]
    # BM25Retriever hands out its stored Documents: reranking must not have written into them.
    assert [d.model_dump() for d in bm25.docs] == stored_before


async def test_threshold_and_lost_in_the_middle_over_a_vector_store() -> None:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_documents(documents())
    base = store.as_retriever(search_kwargs={"k": 8})
    candidates = base.invoke(QUERY)
    kept = [d for d in by_grade(candidates) if GRADE[d.page_content] >= 1][:5]
    expected = lost_in_the_middle(kept)

    compressor = RerankKitCompressor(
        reranker=graded(), top_n=5, score_threshold=1.0, reorder="lost_in_the_middle"
    )
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    for out in (retriever.invoke(QUERY), await retriever.ainvoke(QUERY)):
        assert [d.id for d in out] == [d.id for d in expected]
        assert all(d.metadata["relevance_score"] >= 1.0 for d in out)


async def test_pipeline_splits_then_reranks_sentences(bm25: BM25Retriever) -> None:
    # Sentence-level compression: split each retrieved document, keep the best two sentences.
    splitter = CharacterTextSplitter(separator=". ", chunk_size=1, chunk_overlap=0)
    sentence_grade = {"Frost melts off the coil every hour": 5, "The fan runs all day": 1}
    reranker = FunctionReranker(lambda query, text: float(sentence_grade.get(text, 0)))
    long_doc = Document(
        page_content="The fan runs all day. Frost melts off the coil every hour. Nothing else.",
        metadata={"src": "manual"},
        id="manual",
    )
    base = BM25Retriever.from_documents([*documents(), long_doc], k=4, preprocess_func=words)
    pipeline = DocumentCompressorPipeline(
        transformers=[splitter, RerankKitCompressor(reranker=reranker, top_n=2)]
    )
    retriever = ContextualCompressionRetriever(base_compressor=pipeline, base_retriever=base)
    query = "why does the heat pump fan run and frost melt off the coil"
    assert long_doc.id in [d.id for d in base.invoke(query)]
    for out in (retriever.invoke(query), await retriever.ainvoke(query)):
        assert [d.page_content for d in out] == [
            "Frost melts off the coil every hour",
            "The fan runs all day",
        ]
        assert [d.metadata for d in out] == [
            {"src": "manual", "relevance_score": 5.0},
            {"src": "manual", "relevance_score": 1.0},
        ]


async def test_pipeline_cascade_of_two_rerankers(bm25: BM25Retriever) -> None:
    # A cheap first reranker narrows to 4; a second one picks 2 from those 4 by its own score.
    second = FunctionReranker(lambda query, text: -float(len(text)))  # shortest first
    pipeline = DocumentCompressorPipeline(
        transformers=[
            RerankKitCompressor(reranker=graded(), top_n=4),
            RerankKitCompressor(reranker=second, top_n=2),
        ]
    )
    retriever = ContextualCompressionRetriever(base_compressor=pipeline, base_retriever=bm25)
    narrowed = by_grade(bm25.invoke(QUERY))[:4]
    expected = sorted(narrowed, key=lambda d: len(d.page_content))[:2]
    for out in (retriever.invoke(QUERY), await retriever.ainvoke(QUERY)):
        assert [d.id for d in out] == [d.id for d in expected]
        # The last reranker's score is the one a document carries.
        assert [d.metadata["relevance_score"] for d in out] == [
            -float(len(d.page_content)) for d in expected
        ]


async def test_real_tiny_cross_encoder_by_path(
    bm25: BM25Retriever, tiny_cross_encoder: Path
) -> None:
    from rerankkit import CrossEncoderReranker

    candidates = bm25.invoke(QUERY)
    direct = CrossEncoderReranker(tiny_cross_encoder).rerank(
        QUERY, [d.page_content for d in candidates], top_n=3
    )
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankKitCompressor(reranker=str(tiny_cross_encoder), top_n=3),
        base_retriever=bm25,
    )
    for out in (retriever.invoke(QUERY), await retriever.ainvoke(QUERY)):
        assert [d.id for d in out] == [candidates[r.index].id for r in direct]
        assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
            [r.score for r in direct], abs=1e-6
        )
