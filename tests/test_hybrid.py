"""Hybrid stack helpers in both frameworks: RRF retrievers, stage cuts, metadata, async."""

from __future__ import annotations

import string
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from rerankkit import Reranker
from rerankkit.compose._fusion import reciprocal_rank_fusion
from rerankkit.testing import FunctionReranker, KeywordReranker

pytest.importorskip("langchain_classic")
pytest.importorskip("llama_index.core")

from framework_fakes import FixedRetriever as Fixed
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import BaseRetriever as LIRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from langchain_rerankkit._hybrid import (
    RerankKitFusionRetriever as LCFusion,
)
from langchain_rerankkit._hybrid import hybrid_retriever
from llamaindex_rerankkit._hybrid import (
    RerankKitFusionRetriever as LIFusion,
)
from llamaindex_rerankkit._hybrid import hybrid_postprocessor, hybrid_query_engine

TEXTS = [
    "cats purr when they are content",
    "dogs bark at the mail carrier",
    "a cat and a kitten sleep all the day",
    "the parliament passed the budget",
    "kittens are young cats that purr",
    "birds sing at dawn",
]


def lc_docs(indices: list[int]) -> list[Document]:
    return [Document(TEXTS[i], id=f"doc{i}", metadata={"source": i}) for i in indices]


def test_langchain_fusion_is_rerankkit_rrf_with_weights_and_cut() -> None:
    first, second = lc_docs([0, 1, 2, 3]), lc_docs([4, 2, 0])
    fusion = LCFusion(
        retrievers=[Fixed(docs=first), Fixed(docs=second)], weights=[1.0, 2.0], c=10, top_n=3
    )
    fused = fusion.invoke("cats")
    expected = reciprocal_rank_fusion(
        [[d.page_content for d in first], [d.page_content for d in second]], k=10, weights=[1, 2]
    )
    assert [d.page_content for d in fused] == list(expected)[:3]
    assert [d.metadata["rrf_score"] for d in fused] == pytest.approx(list(expected.values())[:3])
    by_text = {d.page_content: d for d in first + second}
    for document in fused:
        original = by_text[document.page_content]
        assert document.id == original.id
        assert document.metadata["source"] == original.metadata["source"]
        assert "rrf_score" not in original.metadata  # the retrievers' documents are untouched


def test_langchain_fusion_counts_a_repeated_document_once_at_its_best_rank() -> None:
    repeated = lc_docs([0, 1, 0])
    fused = LCFusion(retrievers=[Fixed(docs=repeated)], weights=[1.0], c=0, top_n=None).invoke("q")
    assert [(d.page_content, d.metadata["rrf_score"]) for d in fused] == [
        (TEXTS[0], 1.0),
        (TEXTS[1], 0.5),
    ]
    with pytest.raises(ValueError, match="top_n"):
        LCFusion(retrievers=[Fixed(docs=repeated)], weights=[1.0], top_n=0)


async def test_langchain_async_fusion_equals_sync() -> None:
    fusion = LCFusion(retrievers=[Fixed(docs=lc_docs([0, 1])), Fixed(docs=lc_docs([1, 2]))])
    assert await fusion.ainvoke("q") == fusion.invoke("q")


class Recording(Reranker):
    """A fake 'LLM' stage: prefers shorter texts and records what it was shown."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def _score(self, query: str, documents: list[str]) -> list[float]:
        self.seen.append(list(documents))
        return [-float(len(d)) for d in documents]


def test_langchain_hybrid_stack_cuts_at_every_stage() -> None:
    bm25, dense = Fixed(docs=lc_docs([0, 1, 2, 3, 4, 5])), Fixed(docs=lc_docs([4, 2, 5, 0]))
    llm = Recording()
    retriever = hybrid_retriever(
        [bm25, dense],
        KeywordReranker(),
        fusion_top_n=5,
        rerank_top_n=3,
        llm_reranker=llm,
        llm_top_n=2,
    )
    results = retriever.invoke("do cats purr")
    keyword = KeywordReranker()
    fused = list(
        reciprocal_rank_fusion(
            [[d.page_content for d in bm25.docs], [d.page_content for d in dense.docs]]
        )
    )[:5]
    survivors = [fused[r.index] for r in keyword.rerank("do cats purr", fused, top_n=3)]
    assert sorted(llm.seen[0]) == sorted(survivors)  # the LLM saw only the cross-encoder's 3
    assert len(results) == 2
    assert [d.page_content for d in results] == sorted(survivors, key=len)[:2]
    for document in results:
        first_stage, last_stage = document.metadata["stage_scores"]
        assert first_stage == keyword.score("do cats purr", [document.page_content])[0]
        assert document.metadata["relevance_score"] == last_stage == -len(document.page_content)
        assert "rrf_score" in document.metadata


class LetterEmbeddings(Embeddings):
    """Deterministic bag-of-letters embeddings (enough for a vector store to rank by)."""

    def _vector(self, text: str) -> list[float]:
        counts = [float(text.lower().count(c)) for c in string.ascii_lowercase]
        norm = sum(x * x for x in counts) ** 0.5 or 1.0
        return [x / norm for x in counts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.mark.slow
def test_langchain_hybrid_with_real_retrievers_and_a_cross_encoder_path(
    tiny_cross_encoder: Path,
) -> None:
    pytest.importorskip("rank_bm25")
    pytest.importorskip("torch")
    from langchain_community.retrievers import BM25Retriever
    from langchain_core.vectorstores import InMemoryVectorStore

    documents = lc_docs(list(range(len(TEXTS))))
    bm25 = BM25Retriever.from_documents(documents, k=4)
    dense = InMemoryVectorStore.from_documents(documents, LetterEmbeddings()).as_retriever(
        search_kwargs={"k": 4}
    )
    retriever = hybrid_retriever([bm25, dense], str(tiny_cross_encoder), rerank_top_n=3)
    results = retriever.invoke("do cats purr")
    assert 1 <= len(results) <= 3
    assert len({d.page_content for d in results}) == len(results)
    scores = [d.metadata["relevance_score"] for d in results]
    assert scores == sorted(scores, reverse=True)
    assert {d.page_content for d in results} <= set(TEXTS)


class LIFixed(LIRetriever):
    """A LlamaIndex retriever returning fixed nodes (best first) with given scores."""

    def __init__(self, indices: list[int]) -> None:
        super().__init__()
        self.items = [
            NodeWithScore(node=TextNode(text=TEXTS[i], id_=f"doc{i}"), score=10.0 - rank)
            for rank, i in enumerate(indices)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.items


def test_llamaindex_fusion_is_rerankkit_rrf_and_leaves_retriever_scores_alone() -> None:
    first, second = LIFixed([0, 1, 2, 3]), LIFixed([4, 2, 0])
    fusion = LIFusion([first, second], similarity_top_k=3, k=10, retriever_weights=[1, 3])
    fused = fusion.retrieve("cats")
    # QueryFusionRetriever normalises weights to sum to 1
    expected = reciprocal_rank_fusion(
        [[TEXTS[i] for i in (0, 1, 2, 3)], [TEXTS[i] for i in (4, 2, 0)]],
        k=10,
        weights=[0.25, 0.75],
    )
    assert [n.node.get_content() for n in fused] == list(expected)[:3]
    assert [n.score for n in fused] == pytest.approx(list(expected.values())[:3])
    assert [n.score for n in first.items] == [10.0, 9.0, 8.0, 7.0]  # not overwritten


async def test_llamaindex_async_fusion_equals_sync() -> None:
    fusion = LIFusion([LIFixed([0, 1]), LIFixed([1, 2])])
    sync = fusion.retrieve("q")
    asynchronous = await fusion.aretrieve("q")
    assert [(n.node.node_id, n.score) for n in asynchronous] == [
        (n.node.node_id, n.score) for n in sync
    ]


def test_llamaindex_fusion_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="similarity_top_k"):
        LIFusion([LIFixed([0])], similarity_top_k=0)
    with pytest.raises(ValueError, match="weights"):
        LIFusion([LIFixed([0])], retriever_weights=[1, 2])
    with pytest.raises(ValueError, match="k must be"):
        LIFusion([LIFixed([0])], k=-1)


def test_llamaindex_hybrid_query_engine_cuts_at_every_stage() -> None:
    llm = Recording()
    engine = hybrid_query_engine(
        [LIFixed([0, 1, 2, 3, 4, 5]), LIFixed([4, 2, 5, 0])],
        KeywordReranker(),
        llm=MockLLM(),
        fusion_top_n=5,
        rerank_top_n=3,
        llm_reranker=llm,
        llm_top_n=2,
    )
    nodes = engine.retrieve(QueryBundle("do cats purr"))
    assert len(llm.seen) == 1 and len(llm.seen[0]) == 3
    assert len(nodes) == 2
    for node in nodes:
        assert node.score == node.node.metadata["relevance_score"] == -len(node.node.get_content())
        assert len(node.node.metadata["stage_scores"]) == 2
    response = engine.query("do cats purr")
    assert [n.node.node_id for n in response.source_nodes] == [n.node.node_id for n in nodes]


def test_hybrid_postprocessor_without_llm_is_the_plain_reranker() -> None:
    post = hybrid_postprocessor(FunctionReranker(lambda q, d: -len(d)), rerank_top_n=2)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in TEXTS]
    kept = post.postprocess_nodes(nodes, query_str="anything")
    assert [n.node.get_content() for n in kept] == sorted(TEXTS, key=len)[:2]
    assert "stage_scores" not in kept[0].node.metadata


# --- both adapters check the fusion settings alike, at construction -----------------------

NOT_A_MODEL = "/no/such/rerankkit-model"  # loading it would fail: fusion is checked first


def lc_stack(**fusion: Any) -> Any:
    return hybrid_retriever(
        [Fixed(docs=lc_docs([0, 1])), Fixed(docs=lc_docs([2]))], NOT_A_MODEL, **fusion
    )


def li_stack(**fusion: Any) -> Any:
    if "weights" in fusion:
        fusion["retriever_weights"] = fusion.pop("weights")
    return hybrid_query_engine(
        [LIFixed([0, 1]), LIFixed([2])], NOT_A_MODEL, llm=MockLLM(), **fusion
    )


@pytest.mark.parametrize("stack", [lc_stack, li_stack], ids=["langchain", "llamaindex"])
@pytest.mark.parametrize(
    ("fusion", "error", "match"),
    [
        ({"fusion_top_n": 0}, ValueError, "fusion_top_n must be >= 1, got 0"),
        ({"fusion_top_n": 2.5}, TypeError, "fusion_top_n must be an int or None, got float"),
        ({"k": "60"}, TypeError, "k must be a number, got str"),
        ({"k": -1}, ValueError, "k must be >= 0"),
        ({"weights": [1.0]}, ValueError, "weights has 1 entries for 2 retrievers"),
        ({"weights": [0, 0]}, ValueError, "weights must not all be zero"),
    ],
)
def test_hybrid_helpers_check_fusion_settings_alike(
    stack: Callable[..., Any], fusion: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        stack(**fusion)
    if "weights" in fusion and stack is li_stack:  # each names the argument its caller passed
        assert str(caught.value).startswith("retriever_weights")


def test_fusion_top_n_none_keeps_every_fused_document_in_both_adapters() -> None:
    everything = FunctionReranker(lambda q, d: 0.0)
    lc = hybrid_retriever(
        [Fixed(docs=lc_docs([0, 1, 2])), Fixed(docs=lc_docs([3, 4, 5]))],
        everything,
        fusion_top_n=None,
        rerank_top_n=None,
    )
    li = hybrid_query_engine(
        [LIFixed([0, 1, 2]), LIFixed([3, 4, 5])],
        everything,
        llm=MockLLM(),
        fusion_top_n=None,
        rerank_top_n=None,
    )
    assert len(lc.invoke("q")) == len(li.retrieve(QueryBundle("q"))) == len(TEXTS)
    assert LIFusion([LIFixed([0, 1, 2, 3, 4, 5])], similarity_top_k=None).similarity_top_k is None


def test_langchain_fusion_retriever_checks_its_fields_at_construction() -> None:
    retrievers = [Fixed(docs=lc_docs([0])), Fixed(docs=lc_docs([1]))]
    with pytest.raises(ValueError, match="c must be >= 0, got -1"):
        LCFusion(retrievers=retrievers, c=-1)  # was accepted, failing at the first invoke
    with pytest.raises(TypeError, match=r"^c must be a number, got str$"):
        LCFusion(retrievers=retrievers, c="60")  # was coerced to 60 by pydantic
    with pytest.raises(ValueError, match=r"weights\[1\] must be >= 0"):
        LCFusion(retrievers=retrievers, weights=[1, -1])
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        LCFusion(retrievers=retrievers, top_n=0)
    fusion = LCFusion(retrievers=retrievers, c=2.5, top_n=None)  # RRF's k may be any number >= 0
    assert (fusion.c, fusion.top_n, fusion.weights) == (2.5, None, [0.5, 0.5])
    assert [d.metadata["rrf_score"] for d in fusion.invoke("q")] == [0.5 / 3.5] * 2


def test_llamaindex_fusion_retriever_names_its_own_arguments() -> None:
    with pytest.raises(TypeError, match=r"^k must be a number, got str$"):
        LIFusion([LIFixed([0])], k="60")
    with pytest.raises(ValueError, match=r"^retriever_weights must not all be zero$"):
        LIFusion([LIFixed([0]), LIFixed([1])], retriever_weights=[0, 0])
    with pytest.raises(TypeError, match=r"^similarity_top_k must be an int or None, got str$"):
        LIFusion([LIFixed([0])], similarity_top_k="3")


# --- the fusion settings are checked once, at construction, not at every query ---------------


def count_fusion_checks(build_and_retrieve: Callable[[], object]) -> Counter[str]:
    """Calls of each fusion setting's check while ``build_and_retrieve`` runs."""
    from rerankkit._validation import check_number, check_top_n, check_weights

    calls: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        if frame.f_code is check_number.__code__ and "[" not in frame.f_locals["argument"]:
            calls[frame.f_locals["argument"]] += 1  # not check_weights' per-weight calls
        elif frame.f_code is check_weights.__code__:
            calls["weights"] += 1
        elif frame.f_code is check_top_n.__code__:
            calls["top_n"] += 1

    sys.setprofile(profile)
    try:
        build_and_retrieve()
    finally:
        sys.setprofile(None)
    return calls


def test_fusion_settings_are_checked_once_for_a_construction_and_two_queries() -> None:
    def langchain() -> object:
        fusion = LCFusion(retrievers=[Fixed(docs=lc_docs([0, 1])), Fixed(docs=lc_docs([1]))])
        return fusion.invoke("cats"), fusion.invoke("dogs")

    def llamaindex() -> object:
        fusion = LIFusion([LIFixed([0, 1]), LIFixed([1, 2])], retriever_weights=[1, 2])
        return fusion.retrieve("cats"), fusion.retrieve("dogs")

    assert count_fusion_checks(langchain) == {"c": 1, "weights": 1, "top_n": 1}
    assert count_fusion_checks(llamaindex) == {"k": 1, "weights": 1, "top_n": 1}
