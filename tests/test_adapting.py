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
from pydantic import ValidationError

from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import CascadeReranker, LLMListwiseReranker, LLMPointwiseReranker
from rerankkit.adapting import (
    RerankSettings,
    arerank_items,
    fuse_items,
    fusion_fields,
    rerank_items,
)
from rerankkit.compose._fusion import reciprocal_rank_fusion
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker, ScriptedLLM

EQUAL = {"k": 60, "weights": None, "top_n": None}

# --- fuse_items ------------------------------------------------------------------------


@given(
    lists=st.lists(st.lists(st.sampled_from("abcdef"), max_size=8), max_size=4),
    k=st.sampled_from([0, 1, 60]),
)
def test_fuse_items_is_rrf_of_the_deduplicated_lists(lists: list[list[str]], k: int) -> None:
    objects = [[{"id": key, "list": i} for key in keys] for i, keys in enumerate(lists)]
    fused = fuse_items(objects, key=lambda o: o["id"], k=k, weights=None, top_n=None)
    expected = reciprocal_rank_fusion([list(dict.fromkeys(keys)) for keys in lists], k=k)
    assert [(o["id"], s) for o, s in fused] == list(expected.items())
    for item, _ in fused:  # the first object met for a key stands for it, unchanged
        first = next(o for row in objects for o in row if o["id"] == item["id"])
        assert item is first


def test_fuse_items_counts_a_repeat_once_at_its_better_rank_and_cuts() -> None:
    fused = fuse_items([["x", "y", "x"], ["y"]], key=str, k=0, weights=[1, 2], top_n=None)
    assert fused == [("y", 0.5 + 2.0), ("x", 1.0)]
    one = fuse_items([["x", "y", "x"], ["y"]], key=str, k=0, weights=None, top_n=1)
    assert one == [("y", 1.5)]
    assert fuse_items([], key=str, **EQUAL) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"top_n": 0}, ValueError, "top_n must be >= 1"),
        ({"top_n": 2.0}, TypeError, "top_n must be an int or None"),
        ({"k": -1}, ValueError, "k must be >= 0"),
        ({"weights": [1.0, 2.0]}, ValueError, "weights has 2 entries for 1 retrievers"),
    ],
)
def test_fuse_items_settings_are_checked_once_by_fusion_fields(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    # fuse_items runs at every query and trusts its settings: they are checked where they
    # enter (a retriever's constructor), by fusion_fields.
    with pytest.raises(error, match=match):
        fuse_items([["a"]], key=str, **fusion_fields(1, **kwargs))


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


# --- settings: RerankSettings, from_stages, from_rerankkit_llm ----------------------------


def test_settings_check_every_field_once_and_refuse_old_spellings() -> None:
    reranker = KeywordReranker()
    assert RerankSettings(reranker=reranker).model_dump(exclude={"reranker"}) == {
        "top_n": 3,
        "score_threshold": None,
        "reorder": "none",
        "on_empty_query": "unranked",
        "on_reranker_error": "unranked",
        "min_relevance": None,
        "on_no_relevant": "empty",
        "prune": False,
        "budget_tokens": None,
    }
    for fields, error, match in [
        ({"top_n": 0}, ValueError, "top_n must be >= 1"),
        ({"min_relevance": 2}, ValueError, r"min_relevance must lie in \[0, 1\]"),
        ({"on_no_relevant": "none"}, ValueError, "on_no_relevant must be one of"),
        ({"score_threshold": float("nan")}, ValueError, "NaN"),
        ({"reorder": "reverse"}, ValueError, "reorder must be one of"),
        ({"on_empty_query": "retrieval_order"}, ValueError, "renamed 'unranked'"),
        ({"on_reranker_error": "fallback"}, ValueError, "renamed 'unranked'"),
        ({"on_reranker_error": "keep"}, ValueError, "on_reranker_error must be one of"),
        ({"reranker": 3}, TypeError, "reranker must be"),
    ]:
        with pytest.raises(error, match=match):
            RerankSettings(**{"reranker": reranker, **fields})
    settings = RerankSettings(reranker=reranker)
    with pytest.raises(ValueError, match="on_empty_query='retrieval_order' was renamed 'unranked'"):
        settings.on_empty_query = "retrieval_order"  # type: ignore[assignment]


def test_settings_are_checked_before_loading_a_model() -> None:
    with pytest.raises(ValueError, match="top_n"):  # no hub access for a typo
        RerankSettings(reranker="no/such-model", top_n=-1)


def test_from_stages() -> None:
    first, llm = KeywordReranker(), KeywordReranker()
    plain = RerankSettings.from_stages(first, rerank_top_n=4, score_threshold=0.5)
    assert (plain.reranker, plain.top_n, plain.score_threshold) == (first, 4, 0.5)
    cascade = RerankSettings.from_stages(first, llm_reranker=llm, reorder="lost_in_the_middle")
    assert isinstance(cascade.reranker, CascadeReranker)
    # the LLM stage ranks every survivor of the first; the adapter's top_n keeps llm_top_n
    assert cascade.reranker.stages == [(first, 10), (llm, None)]
    assert (cascade.top_n, cascade.reorder) == (3, "lost_in_the_middle")
    with pytest.raises(ValueError, match="rerank_top_n must be >= 1"):
        RerankSettings.from_stages("no/such-model", rerank_top_n=0)
    with pytest.raises(ValueError, match="rerank_top_n must be >= 1"):
        RerankSettings.from_stages("no/such-model", llm_reranker=llm, rerank_top_n=0)
    # a wrong type is one ValidationError like a wrong value (issue 27), not a bare TypeError
    with pytest.raises(ValidationError, match="llm_top_n must be an int or None"):
        RerankSettings.from_stages(first, llm_reranker=llm, llm_top_n="3")
    with pytest.raises(TypeError, match="llm_reranker must be a rerankkit Reranker or an LLM"):
        RerankSettings.from_stages(first, llm_reranker="gpt-4o")


def test_from_rerankkit_llm_builds_the_llm_reranker_and_checks_settings() -> None:
    settings = RerankSettings.from_rerankkit_llm(
        ScriptedLLM(["[2] > [1]"]), top_n=1, window_size=5, stride=2
    )
    reranker = settings.reranker
    assert isinstance(reranker, LLMListwiseReranker) and reranker.window_size == 5
    assert [r.index for r in reranker.rerank("q", ["a", "b"], top_n=settings.top_n)] == [1]
    rating = RerankSettings.from_rerankkit_llm(ScriptedLLM([]), method="rating", top_n=None)
    assert isinstance(rating.reranker, LLMPointwiseReranker)
    assert rating.reranker.method == "rating" and rating.top_n is None
    with pytest.raises(ValueError, match="method must be one of"):
        RerankSettings.from_rerankkit_llm(ScriptedLLM([]), method="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reorder must be one of"):
        RerankSettings.from_rerankkit_llm(ScriptedLLM([]), reorder="reverse")


# --- one call: rerank_items / arerank_items on plain objects ----------------------------


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_rerank_items_keeps_items_with_their_position_metadata_and_score(
    asynchronous: bool,
) -> None:
    settings = RerankSettings(reranker=FixedScoreReranker([0.1, 0.7, 0.4]), top_n=2)
    items = [{"t": "x"}, {"t": "y"}, {"t": "z"}]
    call = arerank_items if asynchronous else rerank_items
    outcome = call(settings, "q", items, text=lambda item: item["t"])
    outcome = await outcome if asynchronous else outcome
    assert outcome.reranked and outcome.error is None
    assert [(k.index, k.item, k.score, k.metadata) for k in outcome.kept] == [
        (1, items[1], 0.7, {"relevance_score": 0.7}),
        (2, items[2], 0.4, {"relevance_score": 0.4}),
    ]
    assert all(kept.item is items[kept.index] for kept in outcome.kept)


def test_rerank_items_keeps_the_items_unranked_for_a_blank_query_or_a_failure() -> None:
    def broken(query: str, text: str) -> float:
        raise TimeoutError("provider down\nretry later")

    items = ["a", "b", "c"]
    blank = rerank_items(RerankSettings(reranker=KeywordReranker(), top_n=2), " ", items, text=str)
    assert not blank.reranked and blank.error is None
    assert [(k.index, k.item, k.score, k.metadata) for k in blank.kept] == [
        (0, "a", None, {"reranked": False}),
        (1, "b", None, {"reranked": False}),
    ]
    failing = RerankSettings(reranker=FunctionReranker(broken), top_n=None)
    failed = rerank_items(failing, "q", items, text=str)
    assert isinstance(failed.error, TimeoutError) and not failed.reranked
    assert [k.item for k in failed.kept] == items
    reason = "TimeoutError: provider down"
    assert failed.kept[0].metadata == {"reranked": False, "rerank_error": reason}
    failing.on_reranker_error = "raise"
    with pytest.raises(TimeoutError):
        rerank_items(failing, "q", items, text=str)
    with pytest.raises(TypeError, match=r"documents\[1\] must be a str"):
        rerank_items(failing, "q", items, text=lambda item: 1 if item == "b" else item)


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
        assert adapter.reranker.stages == [(first, 5), (llm, None)]
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
