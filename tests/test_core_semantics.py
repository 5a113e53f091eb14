"""The shared semantics every backend inherits from ``Reranker`` (DESIGN.md, core contract)."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankkit import Reranker, RerankResult, result_metadata
from rerankkit._ordering import rank
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker

scores_strategy = st.lists(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
    | st.sampled_from([0.0, 0.5, 1.0]),  # plenty of ties
    max_size=40,
)


def _docs(n: int) -> list[str]:
    return [f"doc {i}" for i in range(n)]


def test_sorted_descending_with_stable_ties() -> None:
    results = FixedScoreReranker([0.5, 0.9, 0.5, 0.9, 0.1]).rerank("q", _docs(5))
    assert [r.index for r in results] == [1, 3, 0, 2, 4]
    assert [r.score for r in results] == [0.9, 0.9, 0.5, 0.5, 0.1]


def test_scores_are_plain_floats() -> None:
    import numpy as np

    reranker = FixedScoreReranker(list(np.array([0.25, 0.75], dtype=np.float32)))
    results = reranker.rerank("q", _docs(2))
    assert all(type(r.score) is float for r in results)
    assert all(type(s) is float for s in reranker.score("q", _docs(2)))


@pytest.mark.parametrize(("top_n", "expected"), [(None, 4), (1, 1), (3, 3), (4, 4), (100, 4)])
def test_top_n_bounds(top_n: int | None, expected: int) -> None:
    assert len(FixedScoreReranker([1, 2, 3, 4]).rerank("q", _docs(4), top_n=top_n)) == expected


@pytest.mark.parametrize("top_n", [0, -1, -100])
def test_top_n_not_positive_is_value_error(top_n: int) -> None:
    with pytest.raises(ValueError, match="top_n"):
        FixedScoreReranker([1.0]).rerank("q", ["a"], top_n=top_n)


@pytest.mark.parametrize("top_n", [1.5, "3", True])
def test_top_n_wrong_type_is_type_error(top_n: object) -> None:
    with pytest.raises(TypeError, match="top_n"):
        FixedScoreReranker([1.0]).rerank("q", ["a"], top_n=top_n)  # type: ignore[arg-type]


def test_threshold_is_inclusive_and_applied_before_top_n() -> None:
    reranker = FixedScoreReranker([0.2, 0.5, 0.8, 0.5])
    kept = reranker.rerank("q", _docs(4), score_threshold=0.5)
    assert [r.index for r in kept] == [2, 1, 3]
    # threshold first, then the cut: 3 pass the threshold, 2 survive the cut
    assert [r.index for r in reranker.rerank("q", _docs(4), top_n=2, score_threshold=0.5)] == [2, 1]
    assert reranker.rerank("q", _docs(4), score_threshold=0.81) == []


@pytest.mark.parametrize("threshold", [float("nan")])
def test_nan_threshold_rejected(threshold: float) -> None:
    with pytest.raises(ValueError, match="score_threshold"):
        FixedScoreReranker([1.0]).rerank("q", ["a"], score_threshold=threshold)


def test_empty_documents_never_touch_the_model() -> None:
    reranker = FixedScoreReranker([])
    assert reranker.rerank("q", []) == []
    assert reranker.rerank("q", (), top_n=3, score_threshold=0.1) == []
    assert reranker.score("q", []) == []
    assert asyncio.run(reranker.arerank("q", [])) == []
    assert reranker.calls == 0


@pytest.mark.parametrize(
    ("query", "documents", "error", "message"),
    [
        (None, ["a"], TypeError, "query must be a str"),
        ("", ["a"], ValueError, "query must be a non-empty"),
        ("   ", ["a"], ValueError, "query must be a non-empty"),
        ("q", ["a", None, "c"], TypeError, r"documents\[1\] must be a str, got NoneType"),
        ("q", ["a", "b", 3], TypeError, r"documents\[2\] must be a str, got int"),
        ("q", "a single string", TypeError, "documents must be a sequence"),
        ("q", None, TypeError, "documents must be a sequence"),
        ("q", {"a", "b"}, TypeError, "documents must be a sequence"),
    ],
)
def test_bad_input_names_the_argument(
    query: object, documents: object, error: type, message: str
) -> None:
    reranker = KeywordReranker()
    for call in (
        lambda: reranker.rerank(query, documents),  # type: ignore[arg-type]
        lambda: reranker.score(query, documents),  # type: ignore[arg-type]
        lambda: asyncio.run(reranker.arerank(query, documents)),  # type: ignore[arg-type]
    ):
        with pytest.raises(error, match=message):
            call()
    assert reranker.calls == 0


def test_input_sequence_is_not_mutated() -> None:
    documents = ["b cat", "a", "cat cat"]
    snapshot = list(documents)
    KeywordReranker().rerank("cat", documents, top_n=1)
    assert documents == snapshot


def test_nan_scores_sink_but_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    results = FixedScoreReranker([0.1, float("nan"), 0.3]).rerank("q", _docs(3))
    assert [r.index for r in results] == [2, 0, 1]
    assert results[-1].score == 0.1  # unjudged: the lowest judged score, flagged
    assert results[-1].details["rerank_failed"] is True
    assert "NaN" in caplog.text


def test_wrong_number_of_scores_is_an_error_not_a_guess() -> None:
    with pytest.raises(RuntimeError, match="2 scores for 3 documents"):
        FixedScoreReranker([0.1, 0.2]).rerank("q", _docs(3))


def test_score_is_in_input_order() -> None:
    assert KeywordReranker().score("cat", ["dog", "cat cat", "cat"]) == [0.0, 2.0, 1.0]


def test_details_flow_into_result_metadata() -> None:
    class Detailed(Reranker):
        def _score(self, query: str, documents: list[str]) -> list[float]:
            return [float(len(d)) for d in documents]

        def _score_with_details(self, query, documents):  # type: ignore[no-untyped-def]
            return self._score(query, documents), [{"length": len(d)} for d in documents]

    results = Detailed().rerank("q", ["aaa", "a", "aa"])
    assert [r.index for r in results] == [0, 2, 1]
    assert [result_metadata(r) for r in results] == [
        {"relevance_score": 3.0, "length": 3},
        {"relevance_score": 2.0, "length": 2},
        {"relevance_score": 1.0, "length": 1},
    ]
    assert result_metadata(RerankResult(0, 0.5)) == {"relevance_score": 0.5}


@given(
    scores=scores_strategy,
    top_n=st.none() | st.integers(1, 50),
    threshold=st.none() | st.floats(-10, 10, allow_nan=False),
)
def test_rank_invariants(scores: list[float], top_n: int | None, threshold: float | None) -> None:
    results = rank(scores, top_n=top_n, score_threshold=threshold)
    indices = [r.index for r in results]
    # unique, a subset of the input positions, none invented
    assert len(indices) == len(set(indices))
    assert set(indices) <= set(range(len(scores)))
    # each result carries its own score; descending; ties in input order
    assert all(r.score == scores[r.index] for r in results)
    for a, b in itertools.pairwise(results):
        assert a.score > b.score or (a.score == b.score and a.index < b.index)
    # nothing lost before the cut: exactly the eligible documents, then the first top_n of them
    eligible = [i for i in range(len(scores)) if threshold is None or scores[i] >= threshold]
    expected_count = len(eligible) if top_n is None else min(top_n, len(eligible))
    assert len(results) == expected_count
    # everything that was cut scores no higher than everything kept
    cut = set(eligible) - set(indices)
    if results and cut:
        assert max(scores[i] for i in cut) <= results[-1].score


@given(scores=scores_strategy)
def test_rerank_matches_score(scores: list[float]) -> None:
    reranker = FixedScoreReranker(scores)
    documents = _docs(len(scores))
    results = reranker.rerank("q", documents)
    assert sorted(r.index for r in results) == list(range(len(scores)))
    assert reranker.score("q", documents) == [float(s) for s in scores]


async def test_arerank_equals_rerank() -> None:
    reranker = KeywordReranker()
    documents = ["cat", "dog", "cat cat dog", "bird"]
    assert await reranker.arerank("cat dog", documents, top_n=3) == reranker.rerank(
        "cat dog", documents, top_n=3
    )
    assert await reranker.ascore("cat", documents) == reranker.score("cat", documents)


async def test_arerank_does_not_block_the_event_loop() -> None:
    model_busy, loop_ran = threading.Event(), threading.Event()
    loop_seen_by_model: list[bool] = []

    def busy(query: str, document: str) -> float:
        model_busy.set()
        # A model busy in C code holds its thread like this, here until the event loop has run
        # (60 s: only if it never does).
        loop_seen_by_model.append(loop_ran.wait(60))
        return 1.0

    async def run_on_the_loop_while_the_model_works() -> None:
        await asyncio.to_thread(model_busy.wait, 60)
        loop_ran.set()  # runs on the loop's thread: only possible if the model does not block it

    await asyncio.gather(
        FunctionReranker(busy).arerank("q", ["a"]), run_on_the_loop_while_the_model_works()
    )
    # the loop kept running while the model worked in a worker thread
    assert loop_seen_by_model == [True]
