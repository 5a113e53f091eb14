"""CascadeReranker: stage cuts, stage scores in details, no duplicates, async."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankkit import Reranker, result_metadata
from rerankkit._result import LOWEST_SCORE
from rerankkit.compose._cascade import CascadeReranker
from rerankkit.testing import FunctionReranker, KeywordReranker


class Recording(Reranker):
    """Scores from a table keyed by document text; records every batch it is shown."""

    def __init__(self, table: dict[str, float], detail: str | None = None) -> None:
        self.table = table
        self.detail = detail
        self.batches: list[list[str]] = []

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        self.batches.append(list(documents))
        return [self.table[d] for d in documents]

    def _score_with_details(self, query: str, documents: list[str]):  # type: ignore[no-untyped-def]
        scores = self._score(query, documents)
        if self.detail is None:
            return scores, None
        return scores, [{self.detail: f"{self.detail}:{d}"} for d in documents]


DOCS = ["d0", "d1", "d2", "d3", "d4", "d5"]
FIRST = {"d0": 0.1, "d1": 0.9, "d2": 0.5, "d3": 0.7, "d4": 0.2, "d5": 0.8}
SECOND = {"d0": 5.0, "d1": 1.0, "d2": 9.0, "d3": 3.0, "d4": 7.0, "d5": 2.0}


def test_each_stage_sees_only_the_survivors_of_the_last() -> None:
    first, second = Recording(FIRST), Recording(SECOND)
    results = CascadeReranker([(first, 3), (second, None)]).rerank("q", DOCS)
    assert first.batches == [DOCS]
    # first stage keeps d1 (0.9), d5 (0.8), d3 (0.7); the second sees them in input order
    assert second.batches == [["d1", "d3", "d5"]]
    assert [r.index for r in results] == [3, 5, 1]  # by second-stage score 3.0, 2.0, 1.0
    assert [r.score for r in results] == [3.0, 2.0, 1.0]
    assert [r.details["stage_scores"] for r in results] == [(0.7, 3.0), (0.8, 2.0), (0.9, 1.0)]


def test_three_stages_and_an_oversized_stage_top_n() -> None:
    third = Recording({d: -float(i) for i, d in enumerate(DOCS)})
    cascade = CascadeReranker([(Recording(FIRST), 4), (Recording(SECOND), 10), (third, 2)])
    results = cascade.rerank("q", DOCS)
    assert third.batches == [["d1", "d2", "d3", "d5"]]
    assert [r.index for r in results] == [1, 2]
    assert results[0].details["stage_scores"] == (0.9, 1.0, -1.0)


def test_top_n_and_threshold_apply_to_the_final_scores() -> None:
    cascade = CascadeReranker([(Recording(FIRST), 4), (Recording(SECOND), None)])
    everything = cascade.rerank("q", DOCS)
    assert [r.index for r in everything] == [2, 3, 5, 1]
    assert cascade.rerank("q", DOCS, top_n=2) == everything[:2]
    assert [r.index for r in cascade.rerank("q", DOCS, score_threshold=2.0)] == [2, 3, 5]


def test_score_gives_cut_documents_the_lowest_score() -> None:
    cascade = CascadeReranker([(Recording(FIRST), 2), (Recording(SECOND), None)])
    scores = cascade.score("q", DOCS)
    assert scores == [LOWEST_SCORE, 1.0, LOWEST_SCORE, LOWEST_SCORE, LOWEST_SCORE, 2.0]


def test_stage_details_reach_the_adapters_metadata() -> None:
    cascade = CascadeReranker(
        [(Recording(FIRST, detail="span"), 2), (Recording(SECOND, detail="span"), None)]
    )
    best = cascade.rerank("q", DOCS)[0]
    assert result_metadata(best) == {
        "relevance_score": 2.0,
        "span": "span:d5",  # the later stage wins a shared key
        "stage_scores": (0.8, 2.0),
    }


def test_empty_input_and_bad_input() -> None:
    stage = Recording(FIRST)
    cascade = CascadeReranker([(stage, 2)])
    assert cascade.rerank("q", []) == []
    assert stage.batches == []
    with pytest.raises(TypeError, match=r"documents\[0\]"):
        cascade.rerank("q", [None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="top_n"):
        cascade.rerank("q", DOCS, top_n=0)


@pytest.mark.parametrize(
    ("stages", "error", "match"),
    [
        ([], ValueError, "must not be empty"),
        (KeywordReranker(), TypeError, "sequence"),
        ([KeywordReranker()], TypeError, r"stages\[0\]"),
        ([(KeywordReranker(), 0)], ValueError, r"^stages\[0\] top_n must be >= 1, got 0$"),
        ([(KeywordReranker(), 2.5)], TypeError, r"^stages\[0\] top_n must be an int or None"),
        ([("model-name", 3)], TypeError, r"stages\[0\]\[0\]"),
    ],
)
def test_bad_stages_are_rejected(stages, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        CascadeReranker(stages)


@given(
    st.lists(st.integers(-5, 5), min_size=0, max_size=15),
    st.lists(st.integers(-5, 5), min_size=15, max_size=15),
    st.one_of(st.none(), st.integers(1, 20)),
    st.one_of(st.none(), st.integers(1, 20)),
)
def test_cascade_never_duplicates_invents_or_loses_survivors(
    first_scores: list[int], second_scores: list[int], keep_1: int | None, keep_2: int | None
) -> None:
    docs = [f"doc{i}" for i in range(len(first_scores))]
    first = FunctionReranker(lambda q, d: first_scores[int(d[3:])])
    second = FunctionReranker(lambda q, d: second_scores[int(d[3:])])
    results = CascadeReranker([(first, keep_1), (second, keep_2)]).rerank("q", docs)
    indices = [r.index for r in results]
    assert len(indices) == len(set(indices))
    expected_count = min(len(docs), keep_1 or len(docs), keep_2 or len(docs))
    assert len(indices) == expected_count
    # survivors of stage 1 are exactly stage 1's own top keep_1
    stage_1 = {r.index for r in first.rerank("q", docs, top_n=keep_1)}
    assert set(indices) <= stage_1
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for r in results:
        assert r.details["stage_scores"] == (first_scores[r.index], second_scores[r.index])


async def test_async_equals_sync() -> None:
    cascade = CascadeReranker([(KeywordReranker(), 3), (FunctionReranker(lambda q, d: -len(d)), 2)])
    docs = ["cat", "a cat on a mat", "dog", "cat cat", "the cat"]
    sync = cascade.rerank("cat", docs)
    asynchronous = await cascade.arerank("cat", docs)
    assert asynchronous == sync
    assert [r.details for r in asynchronous] == [r.details for r in sync]
    assert await cascade.ascore("cat", docs) == cascade.score("cat", docs)
