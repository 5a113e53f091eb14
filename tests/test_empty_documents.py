"""Issue 11, kind 8: empty documents are never sent to a model; kept, ranked last, flagged.

Empty text, whitespace, a LlamaIndex ``ImageNode`` without text (whose EMBED view is only its
metadata) and a LangChain ``Document`` with empty ``page_content`` reached the model, which
scored them above real but irrelevant passages. The rule lives once, in the base class's
entry points (``rerank``, ``arerank``, ``score``, ``ascore``, ``score_many``), so every backend
and composition gets it; each test records what the model saw.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from rerankkit import (
    CachedReranker,
    CascadeReranker,
    FusionReranker,
    LLMListwiseReranker,
    LLMPointwiseReranker,
)
from rerankkit._result import LOWEST_SCORE
from rerankkit.testing import FunctionReranker, KeywordReranker, OracleLLM, ScriptedLLM

EMPTY = {"empty_document": True}


class Recorder(FunctionReranker):
    """Keyword overlap with the query; remembers every text it was asked to score."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        keyword = KeywordReranker()

        def score(query: str, document: str) -> float:
            self.seen.append(document)
            return keyword.score(query, [document])[0]

        super().__init__(score)


DOCS = ["a cat", "", "  \n\t", "dog", "cat cat"]
# keyword overlap with "cat": 1, -, -, 0, 2; the two empty ones last, in input order
ORDER = [4, 0, 3, 1, 2]
SCORES = [1.0, LOWEST_SCORE, LOWEST_SCORE, 0.0, 2.0]  # score(): unjudged are LOWEST_SCORE
# rerank results show an unjudged document the lowest judged score of the call (dog's 0.0)
FLOOR = 0.0
RESULT_SCORES = [1.0, FLOOR, FLOOR, 0.0, 2.0]


def test_rerank_keeps_empty_documents_last_and_flagged_without_scoring_them() -> None:
    recorder = Recorder()
    results = recorder.rerank("cat", DOCS)
    assert [(r.index, r.score) for r in results] == [(i, RESULT_SCORES[i]) for i in ORDER]
    assert [dict(r.details) for r in results] == [{}, {}, {}, EMPTY, EMPTY]
    assert recorder.seen == ["a cat", "dog", "cat cat"]
    assert [r.index for r in recorder.rerank("cat", DOCS, top_n=3)] == [4, 0, 3]
    assert [r.index for r in recorder.rerank("cat", DOCS, score_threshold=0.0)] == [4, 0, 3]


def test_every_entry_point_honours_the_rule() -> None:
    recorder = Recorder()
    assert recorder.score("cat", DOCS) == SCORES
    assert asyncio.run(recorder.ascore("cat", DOCS)) == SCORES
    results = asyncio.run(recorder.arerank("cat", DOCS))
    assert [r.index for r in results] == ORDER and results[-1].details == EMPTY
    groups = [("cat", DOCS), ("cat", ["", " "]), ("cat", []), ("dog", ["dog"])]
    assert recorder.score_many(groups) == [SCORES, [LOWEST_SCORE] * 2, [], [1.0]]
    assert "" not in recorder.seen and not any(not text.strip() for text in recorder.seen)


def test_only_empty_documents_call_no_model() -> None:
    recorder = Recorder()
    results = recorder.rerank("cat", ["", " ", "\n"])
    assert [(r.index, r.score, dict(r.details)) for r in results] == [
        (i, 0.0, EMPTY)
        for i in range(3)  # nothing judged: 0.0
    ]
    assert recorder.calls == 0


def test_llm_rerankers_never_get_an_empty_passage() -> None:
    llm = ScriptedLLM(["yes", "no"])
    pointwise = LLMPointwiseReranker(llm, max_concurrency=1)
    results = pointwise.rerank("q", ["alpha", " ", "beta"])
    assert [(r.index, r.score) for r in results] == [(0, 1.0), (2, 0.0), (1, 0.0)]
    assert llm.calls == 2 and results[-1].details == EMPTY
    assert ["<passage>\nalpha\n</passage>" in llm.prompts[0], "beta" in llm.prompts[1]] == [
        True,
        True,
    ]

    oracle = OracleLLM({"x1": 0.0, "x2": 2.0, "x3": 1.0})
    listwise = LLMListwiseReranker(oracle, window_size=4)
    ranked = listwise.rerank("q", ["x1", "", "x2", "\n", "x3"])
    assert oracle.window_sizes == [3]  # one window of the three texts
    assert [(r.index, r.score) for r in ranked] == [
        (2, 1.0),
        (4, 0.5),
        (0, 1 / 3),
        (1, 1 / 3),  # the lowest judged score, flagged empty
        (3, 1 / 3),
    ]


def test_compositions_pass_no_empty_document_down() -> None:
    first, second = Recorder(), Recorder()
    fused = FusionReranker([first, second])
    results = fused.rerank("cat", DOCS)
    assert [r.index for r in results] == ORDER and results[-1].details == EMPTY
    assert "" not in first.seen + second.seen and len(first.seen) == 3

    inner = Recorder()
    cached = CachedReranker(inner)
    assert cached.score("cat", DOCS) == SCORES and len(cached.cache) == 3
    assert cached.score_many([("cat", DOCS)]) == [SCORES] and len(inner.seen) == 3


def test_cascades_treat_empty_documents_as_ranked_last_by_every_stage() -> None:
    first, second = Recorder(), Recorder()
    cascade = CascadeReranker([(first, None), (second, None)])
    results = cascade.rerank("cat", DOCS)
    assert [r.index for r in results] == ORDER
    assert results[-1].details == {**EMPTY, "stage_scores": (FLOOR, FLOOR)}
    assert "" not in first.seen + second.seen
    # a stage that keeps 3 cuts the two empty documents, as any last-ranked documents
    cut = CascadeReranker([(Recorder(), 3), (Recorder(), None)])
    assert [r.index for r in cut.rerank("cat", DOCS)] == [4, 0, 3]
    assert cut.score("cat", DOCS) == SCORES
    # with room left, they survive the cut and stay last
    roomy = CascadeReranker([(Recorder(), 4), (Recorder(), None)])
    assert [r.index for r in roomy.rerank("cat", DOCS)] == [4, 0, 3, 1]


@pytest.mark.slow
def test_cross_encoder_scores_equal_those_of_the_non_empty_documents_alone(
    tiny_cross_encoder: Path,
) -> None:
    from sentence_transformers import CrossEncoder

    from rerankkit import CrossEncoderReranker

    docs = ["The moon's gravity makes the tides.", "", "Bread rises with yeast.", "   "]
    query = "how do tides depend on the moon"
    ours = CrossEncoderReranker(tiny_cross_encoder, device="cpu", dtype="float32")  # sigmoid
    expected = CrossEncoder(str(tiny_cross_encoder), device="cpu").predict(
        [(query, docs[0]), (query, docs[2])]
    )
    scores = ours.score(query, docs)
    np.testing.assert_allclose([scores[0], scores[2]], expected, atol=1e-4, rtol=0)
    assert scores[1] == scores[3] == LOWEST_SCORE
    results = ours.rerank(query, docs)
    assert [r.index for r in results][2:] == [1, 3]
    assert all(r.details == EMPTY for r in results[2:])


def test_langchain_documents_with_empty_page_content() -> None:
    from langchain_core.documents import Document

    from langchain_rerankkit import RerankKitCompressor

    recorder = Recorder()
    documents = [Document(text, id=f"d{i}") for i, text in enumerate(DOCS)]
    compressor = RerankKitCompressor(reranker=recorder, top_n=None)
    for out in (
        compressor.compress_documents(documents, "cat"),
        asyncio.run(compressor.acompress_documents(documents, "cat")),
    ):
        assert [d.id for d in out] == [f"d{i}" for i in ORDER]
        assert out[-1].metadata == {"relevance_score": FLOOR, "empty_document": True}
        assert "empty_document" not in out[0].metadata
    assert "" not in recorder.seen


def test_llamaindex_image_and_empty_nodes() -> None:
    from llama_index.core.schema import ImageNode, NodeWithScore, TextNode

    from llamaindex_rerankkit import RerankKitPostprocessor

    recorder = Recorder()
    nodes = [
        NodeWithScore(node=TextNode(text="a cat", id_="text"), score=0.9),
        # its EMBED view is "file_name: cat.png", which shares "cat" with the query
        NodeWithScore(node=ImageNode(metadata={"file_name": "cat.png"}, id_="image"), score=0.8),
        NodeWithScore(node=TextNode(text="", id_="empty"), score=0.7),
        NodeWithScore(node=TextNode(text="dog", id_="dog"), score=0.6),
    ]
    post = RerankKitPostprocessor(reranker=recorder, top_n=None)
    for out in (
        post.postprocess_nodes(nodes, query_str="cat"),
        asyncio.run(post.apostprocess_nodes(nodes, query_str="cat")),
    ):
        assert [(n.node.node_id, n.score) for n in out] == [
            ("text", 1.0),
            ("dog", 0.0),
            ("image", 0.0),  # the lowest judged score (dog's), flagged
            ("empty", 0.0),
        ]
        assert out[2].node.metadata == {
            "file_name": "cat.png",
            "relevance_score": 0.0,
            "empty_document": True,
        }
    assert recorder.seen == ["a cat", "dog"] * 2


# --------------------------------------------------------------------------- issue 25, kind 3
# Documents of invisible characters only (PDF/HTML extraction leftovers) are empty too: the
# rule is on the text (whitespace and Unicode categories Cc/Cf), so every backend flags the
# same documents whether or not it has a tokenizer (see rerankkit._blank).

INVISIBLE = [
    "\u200b",  # zero width space
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\u2060",  # word joiner
    "\u200e\u200f\u061c",  # bidi marks (LRM, RLM, ALM)
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",  # bidi embeddings/isolates
    " \u200b\n\ufeff\t\u00ad ",
]


def test_documents_of_invisible_characters_are_flagged_empty_and_never_scored() -> None:
    recorder = Recorder()
    docs = ["a cat", *INVISIBLE, "cat\u200bcat", "\u00adcat"]
    results = recorder.rerank("cat", docs)
    empty = list(range(1, 1 + len(INVISIBLE)))
    assert sorted(r.index for r in results[:3]) == [0, len(docs) - 2, len(docs) - 1]
    assert [r.index for r in results[3:]] == empty
    assert [dict(r.details) for r in results[3:]] == [EMPTY] * len(INVISIBLE)
    assert recorder.seen == ["a cat", "cat\u200bcat", "\u00adcat"]  # visible text is text
    for query in ("\u200b", "\ufeff \u2060"):
        with pytest.raises(ValueError, match="query must be a non-empty string"):
            recorder.rerank(query, ["a cat"])


@pytest.mark.slow
def test_the_text_rule_agrees_with_a_wordpiece_tokenizer_and_the_cross_encoder(
    tiny_cross_encoder: Path,
) -> None:
    from rerankkit import CrossEncoderReranker

    ours = CrossEncoderReranker(tiny_cross_encoder, device="cpu", dtype="float32")
    tokens = ours.tokenizer(INVISIBLE, add_special_tokens=False)["input_ids"]
    assert tokens == [[]] * len(INVISIBLE)  # the model would have read nothing
    scores = ours.score("how do tides depend on the moon", ["The moon makes tides.", *INVISIBLE])
    assert scores[1:] == [LOWEST_SCORE] * len(INVISIBLE) and scores[0] != LOWEST_SCORE


def test_adapters_flag_invisible_text_as_empty() -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_rerankkit import RerankKitCompressor
    from llamaindex_rerankkit import RerankKitPostprocessor

    docs = [Document("a cat", id="cat"), Document("\u200b\ufeff", id="zw")]
    out = RerankKitCompressor(reranker=Recorder(), top_n=None).compress_documents(docs, "cat")
    assert [(d.id, d.metadata.get("empty_document")) for d in out] == [("cat", None), ("zw", True)]
    nodes = [
        NodeWithScore(node=TextNode(text="\u00ad\u2060", metadata={"file": "cat.txt"}, id_="zw")),
        NodeWithScore(node=TextNode(text="a cat", id_="cat")),
    ]
    post = RerankKitPostprocessor(reranker=Recorder(), top_n=None)
    out_nodes = post.postprocess_nodes(nodes, query_str="cat")
    # the empty node is floored to the lowest judged score of the call, flagged
    assert [(n.node.node_id, n.score) for n in out_nodes] == [("cat", 1.0), ("zw", 1.0)]
    assert out_nodes[1].node.metadata["empty_document"] is True
