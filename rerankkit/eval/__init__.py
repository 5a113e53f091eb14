"""Evaluation: measure a first stage and rerankers on judged test collections.

- Data: :func:`load_beir` reads a BEIR folder into a :class:`Dataset`, :func:`load_trec_run`
  a TREC run, :func:`check_run` checks a run against a dataset (errors name file and line).
- First stage: :class:`BM25Index`, :func:`bm25_search` (bm25s), :func:`dense_search` (exact
  cosine), :func:`first_stage_run` (BM25, dense or their fusion over a dataset).
- Reranking: :func:`candidates` (each query's top ``top_n``, trec_eval's order) and
  :func:`rerank_run` (one reranker over a whole run, timed: :class:`Timing`).
- Metrics and reports: :func:`evaluate_runs` and :func:`evaluate` build an :class:`EvalReport`
  (one :class:`SystemResult` per system; JSON, markdown, PNG) from :func:`per_query_metrics`
  (ir-measures); :func:`ranking_metrics` (hit@1, hit@top_n, MRR of ranked id lists).
- Calibration: :func:`fit_calibration` fits a :class:`Calibration` (scores -> P(relevant),
  ``rerankkit calibrate``) measured by :func:`expected_calibration_error`, :func:`brier_score`
  and :func:`threshold_table` (the ``min_relevance`` for a target precision or recall).
- Thresholds: :func:`score_distribution` (also ``rerankkit.score_distribution``) and
  :func:`summarize_scores` give a :class:`ScoreDistribution`.

``rerankkit eval`` is the command line over this package; ir-measures, bm25s, matplotlib and
tqdm come with the ``eval`` extra and are imported only when used.

Example:
    >>> from rerankkit.eval import Dataset, evaluate
    >>> from rerankkit.testing import KeywordReranker
    >>> data = Dataset("toy", corpus={"d1": "red apple", "d2": "green pear"},
    ...                queries={"q1": "pear"}, qrels={"q1": {"d2": 1}})
    >>> report = evaluate(data, {"q1": {"d1": 2.0, "d2": 1.0}}, {"kw": KeywordReranker()},
    ...                   top_n=2, progress=False)
    >>> [(system.name, round(system.metrics["nDCG@10"], 3)) for system in report.systems]
    [('first stage', 0.631), ('kw', 1.0)]
"""

from rerankkit.compose._calibration import Calibration
from rerankkit.eval._calibrate import (
    brier_score,
    expected_calibration_error,
    fit_calibration,
    threshold_table,
)
from rerankkit.eval._calibration import ScoreDistribution, score_distribution, summarize_scores
from rerankkit.eval._datasets import Dataset, check_run, load_beir, load_trec_run
from rerankkit.eval._metrics import evaluate, evaluate_runs, per_query_metrics, ranking_metrics
from rerankkit.eval._report import EvalReport, SystemResult
from rerankkit.eval._retrieval import BM25Index, bm25_search, dense_search
from rerankkit.eval._runs import Timing, candidates, first_stage_run, rerank_run

__all__ = [
    "BM25Index",
    "Calibration",
    "Dataset",
    "EvalReport",
    "ScoreDistribution",
    "SystemResult",
    "Timing",
    "bm25_search",
    "brier_score",
    "candidates",
    "check_run",
    "dense_search",
    "evaluate",
    "evaluate_runs",
    "expected_calibration_error",
    "first_stage_run",
    "fit_calibration",
    "load_beir",
    "load_trec_run",
    "per_query_metrics",
    "ranking_metrics",
    "rerank_run",
    "score_distribution",
    "summarize_scores",
    "threshold_table",
]
