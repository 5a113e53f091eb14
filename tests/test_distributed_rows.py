"""rerankkit.distributed._rows: the per-batch logic of every Ray Data actor, tested without Ray."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rerankkit.distributed._rows import RowOutcome, rerank_rows
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker


def _boom_on(word: str) -> FunctionReranker:
    def score(query: str, document: str) -> float:
        if word in document:
            raise RuntimeError(f"cannot score {document!r}")
        return float(len(set(query.split()) & set(document.split())))

    return FunctionReranker(score)


def test_each_row_equals_rerank_of_that_row() -> None:
    reranker = KeywordReranker()
    queries = ["red apple", "green pear", "apple"]
    documents = [["pear", "red apple", "apple pie"], [], ["apple", "apple apple", "kiwi"]]
    outcomes = rerank_rows(reranker, queries, documents, top_n=2)
    for outcome, query, docs in zip(outcomes, queries, documents, strict=True):
        expected = reranker.rerank(query, docs, top_n=2)
        assert outcome == RowOutcome([r.index for r in expected], [r.score for r in expected])
    assert outcomes[1] == RowOutcome([], [])  # no documents: an empty ranking, not an error


class _CountingScoreMany(KeywordReranker):
    def __init__(self) -> None:
        super().__init__()
        self.score_many_calls: list[int] = []

    def score_many(self, groups: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        self.score_many_calls.append(len(groups))
        return super().score_many(groups)


def test_a_pointwise_batch_is_scored_in_one_score_many_call() -> None:
    reranker = _CountingScoreMany()
    rerank_rows(reranker, ["a", "b", None, "c"], [["a"], ["b"], ["x"], ["c"]])
    assert reranker.score_many_calls == [3]  # the three valid rows, together


def test_bad_values_fail_their_row_only_and_name_the_column() -> None:
    outcomes = rerank_rows(
        KeywordReranker(),
        ["cat", None, "  ", "cat", "cat"],
        [["a cat"], ["cat"], ["cat"], ["cat", None], "cat"],
        query_column="question",
        documents_column="passages",
    )
    assert outcomes[0] == RowOutcome([0], [1.0])
    assert [o.error for o in outcomes[1:]] == [
        "TypeError: question: query must be a str, got NoneType",
        "ValueError: question: query must be a non-empty string",
        "TypeError: passages[1] must be a str, got NoneType",
        "TypeError: passages must be a sequence (list, tuple) of str, got str",
    ]
    assert all(o.ranked_indices is None and o.relevance_scores is None for o in outcomes[1:])


def test_a_scoring_failure_marks_only_the_failing_row() -> None:
    reranker = _boom_on("boom")
    queries = ["red apple", "pear", "apple"]
    documents = [["red apple", "pear"], ["pear", "boom"], ["apple", "red"]]
    outcomes = rerank_rows(reranker, queries, documents)
    assert outcomes[0] == RowOutcome([0, 1], [2.0, 0.0])
    assert outcomes[1] == RowOutcome(None, None, "RuntimeError: cannot score 'boom'")
    assert outcomes[2] == RowOutcome([0, 1], [1.0, 0.0])


def test_a_reranker_that_is_not_pointwise_is_called_per_row() -> None:
    reranker = FixedScoreReranker([0.2, 0.9])
    outcomes = rerank_rows(reranker, ["q", "q", "q"], [["a", "b"], ["c", "d"], ["e"]], top_n=1)
    assert reranker.calls == 3
    assert outcomes[:2] == [RowOutcome([1], [0.9]), RowOutcome([1], [0.9])]
    assert outcomes[2].error == "RuntimeError: backend returned 2 scores for 1 documents"


def test_rows_of_unequal_length_are_refused() -> None:
    with pytest.raises(ValueError, match="2 queries for 1 rows"):
        rerank_rows(KeywordReranker(), ["a", "b"], [["a"]])
