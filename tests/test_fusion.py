"""Fusion: RRF against hand-computed values, normalisations, score fusion, FusionReranker."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankkit.compose._fusion import (
    FusionReranker,
    fuse_runs,
    fuse_scores,
    normalize_scores,
    reciprocal_rank_fusion,
)
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker


def test_rrf_matches_hand_computed_values() -> None:
    fused = reciprocal_rank_fusion([["d1", "d2", "d3"], ["d3", "d1"], ["d4"]])
    expected = {
        "d1": 1 / 61 + 1 / 62,
        "d3": 1 / 63 + 1 / 61,
        "d4": 1 / 61,
        "d2": 1 / 62,
    }
    assert list(fused) == ["d1", "d3", "d4", "d2"]
    assert fused == pytest.approx(expected, rel=1e-12)


def test_rrf_weights_and_k() -> None:
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=0, weights=[3, 1])
    assert fused == pytest.approx({"a": 3 / 1 + 1 / 2, "b": 3 / 2 + 1 / 1})
    assert list(fused) == ["a", "b"]
    # weight 0 removes a ranking's influence entirely (its ids still appear, with 0 added)
    muted = reciprocal_rank_fusion([["a", "b"], ["c"]], k=10, weights=[1, 0])
    assert muted == pytest.approx({"a": 1 / 11, "b": 1 / 12, "c": 0.0})


def test_rrf_reads_score_mappings_by_descending_score() -> None:
    bm25 = {"x": 1.5, "y": 7.0, "z": 7.0}  # y and z tie: mapping order decides
    dense = ["z"]
    fused = reciprocal_rank_fusion([bm25, dense], k=1)
    assert fused == pytest.approx({"z": 1 / 3 + 1 / 2, "y": 1 / 2, "x": 1 / 4})


def test_rrf_ties_keep_first_met_order() -> None:
    assert list(reciprocal_rank_fusion([["a", "b"], ["b", "a"]])) == ["a", "b"]
    assert list(reciprocal_rank_fusion([["b", "a"], ["a", "b"]])) == ["b", "a"]


@pytest.mark.parametrize(
    ("rankings", "kwargs", "error", "match"),
    [
        ([["a", "a"]], {}, ValueError, r"rankings\[0\] lists 'a' more than once"),
        ([["a"]], {"weights": [1, 2]}, ValueError, "2 entries for 1 rankings"),
        ([["a"]], {"weights": [-1]}, ValueError, r"weights\[0\]"),
        ([["a"]], {"weights": [0]}, ValueError, "all be zero"),
        ([["a"]], {"weights": [math.nan]}, ValueError, r"weights\[0\]"),
        ([["a"]], {"k": -1}, ValueError, "k must be"),
        ([["a"]], {"k": math.inf}, ValueError, "k must be"),
        ("abc", {}, TypeError, "rankings must be"),
        ([["a"], "ab"], {}, TypeError, r"rankings\[1\]"),
        ([{"a": "high"}], {}, TypeError, r"rankings\[0\]\['a'\]"),
    ],
)
def test_rrf_rejects_bad_input(rankings, kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        reciprocal_rank_fusion(rankings, **kwargs)


rankings_strategy = st.lists(
    st.lists(st.integers(0, 30), unique=True, max_size=12), min_size=1, max_size=4
)


@given(rankings_strategy, st.integers(0, 100))
def test_rrf_invariants(rankings: list[list[int]], k: int) -> None:
    fused = reciprocal_rank_fusion(rankings, k=k if k else 1)
    k = k if k else 1
    assert set(fused) == {doc for ranking in rankings for doc in ranking}  # none lost/invented
    values = list(fused.values())
    assert values == sorted(values, reverse=True)
    # each ranking hands out exactly sum 1/(k + r), whoever receives it
    handed_out = sum(1 / (k + r) for ranking in rankings for r in range(1, len(ranking) + 1))
    assert math.fsum(values) == pytest.approx(handed_out)
    # a document ranked ahead of another everywhere (and present wherever the other is) wins
    for a in fused:
        for b in fused:
            dominates = all(
                (a in r and (b not in r or r.index(a) < r.index(b))) or (a not in r and b not in r)
                for r in rankings
            )
            if a != b and dominates:
                assert fused[a] > fused[b]


def test_fuse_runs_fuses_query_by_query() -> None:
    bm25 = {"q1": {"a": 9.0, "b": 5.0, "c": 1.0}, "q2": {"x": 3.0}}
    dense = {"q1": {"c": 0.9, "a": 0.8}, "q3": {"y": 0.5}}
    fused = fuse_runs([bm25, dense], k=60, top_n=2)
    assert list(fused) == ["q1", "q2", "q3"]
    assert fused["q1"] == pytest.approx({"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61})
    assert fused["q2"] == pytest.approx({"x": 1 / 61})
    assert fused["q3"] == pytest.approx({"y": 1 / 61})
    with pytest.raises(ValueError, match="top_n"):
        fuse_runs([bm25], top_n=0)


def test_minmax_normalization() -> None:
    assert normalize_scores([3.0, -1.0, 1.0], "minmax") == [1.0, 0.0, 0.5]
    assert normalize_scores([2.0, 2.0], "minmax") == [1.0, 1.0]  # no spread: all full weight
    assert normalize_scores([1.0, -math.inf, 3.0], "minmax") == [0.0, -math.inf, 1.0]
    assert normalize_scores([], "minmax") == []


def test_zscore_normalization_matches_statistics_module() -> None:
    scores = [2.5, -1.0, 4.0, 0.5]
    mean, std = statistics.fmean(scores), statistics.pstdev(scores)
    assert normalize_scores(scores, "zscore") == pytest.approx([(s - mean) / std for s in scores])
    assert normalize_scores([7.0, 7.0, 7.0], "zscore") == [0.0, 0.0, 0.0]


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=20))
def test_normalizations_keep_the_order(scores: list[float]) -> None:
    for method in ("minmax", "zscore"):
        normalized = normalize_scores(scores, method)  # type: ignore[arg-type]
        for i in range(len(scores)):
            for j in range(len(scores)):
                if scores[i] < scores[j]:
                    assert normalized[i] <= normalized[j]
    low, high = min(normalize_scores(scores, "minmax")), max(normalize_scores(scores, "minmax"))
    assert 0.0 <= low <= high <= 1.0


def test_fuse_scores() -> None:
    assert fuse_scores([[0.0, 10.0, 5.0], [4.0, 2.0, 3.0]], "minmax", weights=[1, 2]) == (
        pytest.approx([2.0, 1.0, 1.5])
    )
    assert fuse_scores([[1.0, 2.0], [10.0, 0.0]], None) == [11.0, 2.0]


DOCS = ["a cat sat on the mat", "cat", "dog", "the cat and the other cat"]


def test_fusion_reranker_rrf_fuses_each_rerankers_ranking() -> None:
    keyword, shortest = KeywordReranker(), FunctionReranker(lambda q, d: -len(d))
    fused = FusionReranker([keyword, shortest], k=60)
    expected = reciprocal_rank_fusion(
        [[r.index for r in reranker.rerank("cat", DOCS)] for reranker in (keyword, shortest)]
    )
    results = fused.rerank("cat", DOCS)
    assert [r.index for r in results] == list(expected)
    assert [r.score for r in results] == pytest.approx(list(expected.values()))
    by_index = {r.index: r for r in results}
    assert by_index[3].details["fusion_scores"] == (2.0, -25.0)


def test_fusion_reranker_score_method() -> None:
    a, b = FixedScoreReranker([0.0, 1.0, 0.5]), FixedScoreReranker([10.0, -10.0, 0.0])
    fused = FusionReranker([a, b], method="score", normalization="minmax", weights=[1, 0.5])
    assert fused.score("q", ["x", "y", "z"]) == pytest.approx([0.5, 1.0, 0.75])
    zscored = FusionReranker([a, b], method="score", normalization="zscore")
    expected = fuse_scores([[0.0, 1.0, 0.5], [10.0, -10.0, 0.0]], "zscore")
    assert zscored.score("q", ["x", "y", "z"]) == pytest.approx(expected)


def test_fusion_reranker_goes_through_the_shared_semantics() -> None:
    fused = FusionReranker([KeywordReranker(), FunctionReranker(lambda q, d: -len(d))])
    assert fused.rerank("cat", []) == []
    top = fused.rerank("cat", DOCS, top_n=2)
    assert [r.index for r in top] == [r.index for r in fused.rerank("cat", DOCS)][:2]
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        fused.rerank("cat", ["ok", 3])  # type: ignore[list-item]


async def test_fusion_reranker_async_equals_sync() -> None:
    fused = FusionReranker([KeywordReranker(), FunctionReranker(lambda q, d: -len(d))])
    sync = fused.rerank("cat", DOCS)
    asynchronous = await fused.arerank("cat", DOCS)
    assert asynchronous == sync
    assert [r.details for r in asynchronous] == [r.details for r in sync]


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ([], {}, ValueError),
        ([KeywordReranker(), "model"], {}, TypeError),
        ([KeywordReranker()], {"method": "borda"}, ValueError),
        ([KeywordReranker()], {"normalization": "normalisation"}, ValueError),
        ([KeywordReranker()], {"weights": [1, 1]}, ValueError),
        ([KeywordReranker()], {"k": -5}, ValueError),
    ],
)
def test_fusion_reranker_rejects_bad_configuration(args, kwargs, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        FusionReranker(args, **kwargs)
