"""``rerankkit.adapting``: the behaviour both adapters share, tested once on plain objects,
then checked to be what each adapter's ``from_llm`` / hybrid helpers actually do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import CascadeReranker, LLMListwiseReranker, LLMPointwiseReranker
from rerankkit.adapting import (
    fields_from_llm,
    fuse_items,
    fusion_fields,
    hybrid_fields,
    rerank_fields,
)
from rerankkit.compose._fusion import reciprocal_rank_fusion
from rerankkit.testing import KeywordReranker, ScriptedLLM

# --- fuse_items ------------------------------------------------------------------------


@given(
    lists=st.lists(st.lists(st.sampled_from("abcdef"), max_size=8), max_size=4),
    k=st.sampled_from([0, 1, 60]),
)
def test_fuse_items_is_rrf_of_the_deduplicated_lists(lists: list[list[str]], k: int) -> None:
    objects = [[{"id": key, "list": i} for key in keys] for i, keys in enumerate(lists)]
    fused = fuse_items(objects, key=lambda o: o["id"], k=k)
    expected = reciprocal_rank_fusion([list(dict.fromkeys(keys)) for keys in lists], k=k)
    assert [(o["id"], s) for o, s in fused] == list(expected.items())
    for item, _ in fused:  # the first object met for a key stands for it, unchanged
        first = next(o for row in objects for o in row if o["id"] == item["id"])
        assert item is first


def test_fuse_items_counts_a_repeat_once_at_its_better_rank_and_cuts() -> None:
    fused = fuse_items([["x", "y", "x"], ["y"]], key=str, k=0, weights=[1, 2])
    assert fused == [("y", 0.5 + 2.0), ("x", 1.0)]
    assert fuse_items([["x", "y", "x"], ["y"]], key=str, k=0, top_n=1) == [("y", 1.5)]
    assert fuse_items([], key=str) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"top_n": 0}, ValueError, "top_n must be >= 1"),
        ({"top_n": 2.0}, TypeError, "top_n must be an int or None"),
        ({"k": -1}, ValueError, "k must be >= 0"),
        ({"weights": [1.0, 2.0]}, ValueError, "weights has 2 entries for 1 rankings"),
    ],
)
def test_fuse_items_names_a_bad_argument(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        fuse_items([["a"]], key=str, **kwargs)


# --- fusion_fields ---------------------------------------------------------------------


def test_fusion_fields_defaults_and_keep_all() -> None:
    assert fusion_fields(2) == {"k": 60.0, "weights": None, "top_n": 100}
    checked = fusion_fields(2, k=0, weights=(1, 0), top_n=None)
    assert checked == {"k": 0.0, "weights": [1.0, 0.0], "top_n": None}
    assert type(checked["k"]) is float and all(type(w) is float for w in checked["weights"] or [])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": "60"}, TypeError, "^k must be a number, got str$"),  # refused, not coerced
        ({"k": -1}, ValueError, "^k must be >= 0"),
        ({"k": float("nan")}, ValueError, "^k must be a finite number"),
        ({"top_n": 0}, ValueError, "^fusion_top_n must be >= 1, got 0$"),
        ({"top_n": "5"}, TypeError, "^fusion_top_n must be an int or None, got str$"),
        ({"weights": [1.0]}, ValueError, "^weights has 1 entries for 2 retrievers$"),
        ({"weights": "11"}, TypeError, "^weights must be a sequence of numbers, got str$"),
        ({"weights": [1, "2"]}, TypeError, r"^weights\[1\] must be a number, got str$"),
        ({"weights": [1, -1]}, ValueError, r"^weights\[1\] must be >= 0"),
        ({"weights": [0, 0]}, ValueError, "^weights must not all be zero$"),
    ],
)
def test_fusion_fields_names_the_bad_setting(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        fusion_fields(2, **kwargs)


def test_fusion_fields_uses_the_callers_names() -> None:
    names = {"k": "c", "weights": "retriever_weights", "top_n": "similarity_top_k"}
    for kwargs, match in [
        ({"k": "x"}, "^c must be a number"),
        ({"weights": [0, 0]}, "^retriever_weights must not all be zero"),
        ({"weights": [1, None]}, r"^retriever_weights\[1\] must be a number"),
        ({"top_n": 0}, "^similarity_top_k must be >= 1"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            fusion_fields(2, names=names, **kwargs)


# --- settings: rerank_fields, hybrid_fields, fields_from_llm -----------------------------


def test_rerank_fields_checks_every_setting() -> None:
    reranker = KeywordReranker()
    assert rerank_fields(reranker) == {
        "reranker": reranker,
        "top_n": 3,
        "score_threshold": None,
        "reorder": "none",
    }
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        rerank_fields(reranker, top_n=0)
    with pytest.raises(ValueError, match="NaN"):
        rerank_fields(reranker, score_threshold=float("nan"))
    with pytest.raises(ValueError, match="reorder must be one of"):
        rerank_fields(reranker, reorder="reverse")
    with pytest.raises(TypeError, match="reranker must be"):
        rerank_fields(3)  # type: ignore[arg-type]


def test_rerank_fields_checks_settings_before_loading_a_model() -> None:
    with pytest.raises(ValueError, match="top_n"):  # no hub access for a typo
        rerank_fields("no/such-model", top_n=-1)


def test_hybrid_fields_stages() -> None:
    first, llm = KeywordReranker(), KeywordReranker()
    plain = hybrid_fields(first, rerank_top_n=4, score_threshold=0.5)
    assert plain == {"reranker": first, "top_n": 4, "score_threshold": 0.5, "reorder": "none"}
    cascade = hybrid_fields(first, llm_reranker=llm, reorder="lost_in_the_middle")
    assert isinstance(cascade["reranker"], CascadeReranker)
    assert cascade["reranker"].stages == [(first, 10), (llm, 3)]
    assert (cascade["top_n"], cascade["reorder"]) == (3, "lost_in_the_middle")
    with pytest.raises(ValueError, match="rerank_top_n must be >= 1"):
        hybrid_fields("no/such-model", rerank_top_n=0)
    with pytest.raises(TypeError, match="llm_top_n must be an int or None"):
        hybrid_fields(first, llm_reranker=llm, llm_top_n="3")  # type: ignore[arg-type]


def test_fields_from_llm_builds_the_llm_reranker_and_checks_settings() -> None:
    fields = fields_from_llm(ScriptedLLM(["[2] > [1]"]), top_n=1, window_size=5, stride=2)
    reranker = fields["reranker"]
    assert isinstance(reranker, LLMListwiseReranker) and reranker.window_size == 5
    assert [r.index for r in reranker.rerank("q", ["a", "b"], top_n=fields["top_n"])] == [1]
    rating = fields_from_llm(ScriptedLLM([]), method="rating", top_n=None)
    assert isinstance(rating["reranker"], LLMPointwiseReranker)
    assert rating["reranker"].method == "rating" and rating["top_n"] is None
    with pytest.raises(ValueError, match="method must be one of"):
        fields_from_llm(ScriptedLLM([]), method="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reorder must be one of"):
        fields_from_llm(ScriptedLLM([]), reorder="reverse")


# --- the adapters delegate: same behaviour on both sides ---------------------------------

FROM_LLM: dict[str, Callable[..., Any]] = {
    "langchain": lambda answers, **options: RerankKitCompressor.from_llm(
        FakeListChatModel(responses=answers), **options
    ),
    "llamaindex": lambda answers, **options: RerankKitPostprocessor.from_llm(MockLLM(), **options),
}


@pytest.mark.parametrize("framework", sorted(FROM_LLM))
def test_from_llm_is_the_core_in_both_adapters(framework: str) -> None:
    make = FROM_LLM[framework]
    adapter = make(["[2] > [1]"])
    assert isinstance(adapter.reranker, LLMListwiseReranker)
    assert (adapter.top_n, adapter.score_threshold, adapter.reorder) == (3, None, "none")
    pointwise = make(["Yes"], method="pointwise", top_n=None, reorder="lost_in_the_middle")
    assert isinstance(pointwise.reranker, LLMPointwiseReranker)
    assert pointwise.reranker.method == "yes_no"
    assert (pointwise.top_n, pointwise.reorder) == (None, "lost_in_the_middle")
    for options, match in [
        ({"method": "best"}, "method must be one of"),
        ({"top_n": 0}, "top_n must be >= 1"),
        ({"reorder": "reverse"}, "reorder must be one of"),
        ({"window_size": 0}, "window_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            make(["x"], **options)


def test_hybrid_helpers_are_the_core_in_both_adapters() -> None:
    pytest.importorskip("langchain_classic")
    from langchain_rerankkit import hybrid_compressor
    from llamaindex_rerankkit import hybrid_postprocessor

    first, llm = KeywordReranker(), KeywordReranker()
    stages = {"rerank_top_n": 5, "llm_reranker": llm, "llm_top_n": 2, "score_threshold": 0.0}
    compressor = hybrid_compressor(first, **stages)
    post = hybrid_postprocessor(first, keep_retrieval_score=True, **stages)
    for adapter in (compressor, post):
        assert adapter.reranker.stages == [(first, 5), (llm, 2)]
        assert (adapter.top_n, adapter.score_threshold) == (2, 0.0)
    assert post.keep_retrieval_score is True
    for make in (hybrid_compressor, hybrid_postprocessor):
        with pytest.raises(ValueError, match="rerank_top_n must be >= 1"):
            make(first, rerank_top_n=0)
    docs = [Document("cats purr"), Document("dogs bark"), Document("cats")]
    nodes = [NodeWithScore(node=TextNode(text=d.page_content), score=0.1) for d in docs]
    by_compressor = [d.page_content for d in compressor.compress_documents(docs, "cats purr")]
    by_post = [n.node.get_content() for n in post.postprocess_nodes(nodes, query_str="cats purr")]
    assert by_compressor == by_post == ["cats purr", "cats"]


def test_from_llm_names_the_llm_argument_in_both_adapters() -> None:
    with pytest.raises(TypeError, match=r"^llm must be a LangChain BaseLanguageModel or Runnable"):
        RerankKitCompressor.from_llm("gpt")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^llm must be a LlamaIndex LLM, got str$"):
        RerankKitPostprocessor.from_llm("gpt")  # type: ignore[arg-type]
    from langchain_rerankkit import as_rerankkit_llm

    with pytest.raises(TypeError, match=r"^model must be"):  # its own argument is `model`
        as_rerankkit_llm("gpt")  # type: ignore[arg-type]
