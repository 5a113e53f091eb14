"""Threshold helper: score distribution, quantiles, best-F1 threshold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankkit.eval import score_distribution, summarize_scores
from rerankkit.eval._calibration import best_f1_threshold
from rerankkit.testing import KeywordReranker


def brute_force_best_f1(scores: list[float], labels: list[int]) -> float:
    """Best F1 over every threshold in the sample, by direct counting."""
    positives = sum(labels)
    best = 0.0
    for threshold in set(scores):
        kept = [label for score, label in zip(scores, labels, strict=True) if score >= threshold]
        tp = sum(kept)
        if tp:
            precision, recall = tp / len(kept), tp / positives
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


@given(
    st.lists(
        st.tuples(st.integers(0, 8).map(lambda x: x / 4), st.integers(0, 1)),
        min_size=1,
        max_size=25,
    )
)
def test_best_f1_threshold_agrees_with_brute_force(pairs: list[tuple[float, int]]) -> None:
    scores, labels = [s for s, _ in pairs], [y for _, y in pairs]
    found = best_f1_threshold(scores, labels)
    if sum(labels) == 0:
        assert found is None
        return
    assert found is not None
    threshold, f1, precision, recall = found
    assert f1 == pytest.approx(brute_force_best_f1(scores, labels))
    kept = [y for s, y in pairs if s >= threshold]
    assert precision == pytest.approx(sum(kept) / len(kept))
    assert recall == pytest.approx(sum(kept) / sum(labels))
    # on equal F1 the stricter threshold is reported
    for other in set(scores):
        if other > threshold:
            kept_other = [y for s, y in pairs if s >= other]
            tp = sum(kept_other)
            f1_other = 2 * tp / (len(kept_other) + sum(labels)) if tp else 0.0
            assert f1_other < f1 + 1e-12


def test_summary_statistics_match_numpy() -> None:
    per_query = [[0.1, 0.9, 0.4], [0.7], [0.2, 0.3]]
    flat = np.array(list(itertools.chain.from_iterable(per_query)))
    report = summarize_scores(per_query, quantiles=(0.25, 0.5, 0.9))
    assert (report.count, report.queries) == (6, 3)
    assert report.minimum == 0.1 and report.maximum == 0.9
    assert report.mean == pytest.approx(flat.mean())
    assert report.std == pytest.approx(flat.std())
    assert report.quantiles == pytest.approx({q: np.quantile(flat, q) for q in (0.25, 0.5, 0.9)})
    tops = np.array([0.9, 0.7, 0.3])
    expected_tops = {q: np.quantile(tops, q) for q in (0.25, 0.5, 0.9)}
    assert report.top_score_quantiles == pytest.approx(expected_tops)
    assert report.best_f1_threshold is None
    assert report.suggested_thresholds() == {
        "keep ~50%": report.quantiles[0.5],
        "keep ~10%": report.quantiles[0.9],
    }


def test_minus_infinity_scores_are_counted_not_averaged() -> None:
    report = summarize_scores([[1.0, float("-inf"), 3.0]])
    assert report.non_finite == 1
    assert report.mean == 2.0 and report.minimum == 1.0


def test_score_distribution_scores_the_sample_with_the_reranker() -> None:
    samples = {"red apple": ["apple pie", "red apple", "pear"], "pear tree": ["pear", "fig"]}
    labels = [[0, 1, 0], [1, 0]]
    report = score_distribution(KeywordReranker(), samples, labels=labels)
    expected = summarize_scores([[1.0, 2.0, 0.0], [1.0, 0.0]], labels)
    assert report == expected
    assert report.best_f1_threshold == 1.0
    assert report.relevant_median == 1.5 and report.non_relevant_median == 0.0
    markdown = report.to_markdown()
    assert "| 0.5 | 1 | 1.5 |" in markdown
    assert "best F1 on labels" in markdown


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="samples must not be empty"):
        score_distribution(KeywordReranker(), [])
    with pytest.raises(ValueError, match=r"labels\[0\] has 1 entries for 2 documents"):
        summarize_scores([[0.1, 0.2]], [[1]])
    with pytest.raises(ValueError, match="quantiles"):
        summarize_scores([[0.1]], quantiles=(1.5,))
    with pytest.raises(ValueError, match="no finite score"):
        summarize_scores([[]])


def test_score_distribution_lives_in_rerankkit_eval_and_is_reexported_top_level() -> None:
    import rerankkit
    import rerankkit.eval

    assert rerankkit.score_distribution is rerankkit.eval.score_distribution is score_distribution
