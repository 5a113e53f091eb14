"""Measure rerankers on a test collection: ``evaluate``, ``evaluate_runs`` and their metrics.

The flow is: a first-stage run (a TREC file, or BM25 / dense / hybrid built by
:func:`rerankkit.eval.first_stage_run`) -> each reranker reorders every query's top ``top_n``
candidates (:func:`rerankkit.eval.rerank_run`) -> :func:`evaluate_runs` scores all runs
against the qrels (:func:`per_query_metrics`) and compares each with the first stage
(:func:`wins_losses`) -> :class:`rerankkit.eval.EvalReport` writes JSON, markdown and a PNG plot.

Metrics come from ir-measures (pytrec_eval underneath), so figures are trec_eval's: nDCG@10
(graded), MRR@10 and Recall@top_n with a relevance level (grades >= ``relevance_level`` count
as relevant; TREC DL passage convention is 2 for MRR). Queries with judgments but no candidates
score 0 (trec_eval ``-c``) rather than disappearing from the mean.

Example:
    >>> from rerankkit.eval import Dataset
    >>> from rerankkit.testing import KeywordReranker
    >>> data = Dataset("toy", corpus={"d1": "red apple", "d2": "green pear"},
    ...                queries={"q1": "pear"}, qrels={"q1": {"d2": 1}})
    >>> first = {"q1": {"d1": 2.0, "d2": 1.0}}
    >>> report = evaluate(data, first, {"keyword": KeywordReranker()}, top_n=2, progress=False)
    >>> report.systems[0].metrics["nDCG@10"], report.systems[1].metrics["nDCG@10"]
    (0.6309297535714575, 1.0)
    >>> per_query_metrics(data.qrels, first, measure_names(10), ["q1"])["MRR@10"]
    {'q1': 0.5}
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from rerankkit._base import Reranker
from rerankkit._optional import require
from rerankkit._renamed import renamed_arguments
from rerankkit._validation import check_int
from rerankkit.eval._datasets import Dataset, check_evaluable
from rerankkit.eval._report import EvalReport, SystemResult
from rerankkit.eval._runs import Timing, rerank_run

_TIE = 1e-9  # per-query metric differences below this are ties, not wins


def measure_names(top_n: int, relevance_level: int = 1) -> dict[str, str]:
    """Report names -> ir-measures measure strings (Recall at the rerank cut-off ``top_n``).

    Example:
        >>> measure_names(100, 2)
        {'nDCG@10': 'nDCG@10', 'MRR@10': 'RR(rel=2)@10', 'Recall@100': 'R(rel=2)@100'}
    """
    rel = "" if relevance_level == 1 else f"(rel={relevance_level})"
    return {"nDCG@10": "nDCG@10", "MRR@10": f"RR{rel}@10", f"Recall@{top_n}": f"R{rel}@{top_n}"}


def per_query_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    measures: Mapping[str, str],
    query_ids: Sequence[str],
) -> dict[str, dict[str, float]]:
    """``{report name: {qid: value}}`` for every query in ``query_ids`` (missing -> 0.0).

    ``measures`` maps report names to ir-measures measure strings (``{"MRR@10": "RR@10"}``).

    Example:
        >>> per_query_metrics({"q": {"a": 1}}, {"q": {"a": 1.0}}, {"MRR@10": "RR@10"}, ["q", "z"])
        {'MRR@10': {'q': 1.0, 'z': 0.0}}
    """
    ir_measures = require("ir_measures", "eval")
    parsed = {ir_measures.parse_measure(text): name for name, text in measures.items()}
    values = {name: dict.fromkeys(query_ids, 0.0) for name in measures}
    wanted = set(query_ids)
    sub_qrels = {qid: dict(qrels[qid]) for qid in query_ids if qid in qrels}
    sub_run = {qid: dict(run[qid]) for qid in query_ids if run.get(qid)}
    for metric in ir_measures.iter_calc(list(parsed), sub_qrels, sub_run):
        if metric.query_id in wanted:
            values[parsed[metric.measure]][metric.query_id] = float(metric.value)
    return values


def wins_losses(base: Mapping[str, float], system: Mapping[str, float]) -> tuple[int, int, int]:
    """Queries where ``system`` beats, loses to, and ties ``base`` (same query ids).

    Example:
        >>> wins_losses({"a": 0.5, "b": 0.5, "c": 0.1}, {"a": 0.7, "b": 0.5, "c": 0.0})
        (1, 1, 1)
    """
    wins = sum(system[qid] > base[qid] + _TIE for qid in base)
    losses = sum(system[qid] < base[qid] - _TIE for qid in base)
    return wins, losses, len(base) - wins - losses


@renamed_arguments(k="top_n")
def ranking_metrics(
    rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, Sequence[str]], top_n: int
) -> dict[str, float]:
    """hit@1, hit@top_n and MRR of ranked id lists, averaged over every query in ``relevant``.

    A query with no ranked passages counts as a miss (0), never as absent. Computed with
    ir-measures; the ranks are passed as scores so ties cannot reorder what was printed.

    Raises:
        TypeError: ``top_n`` is not an int, or ``k=`` (renamed ``top_n``).
        ValueError: ``top_n`` is below 1.

    Example:
        >>> ranking_metrics({"q": ["a", "b"]}, {"q": ["b"]}, top_n=3)
        {'hit@1': 0.0, 'hit@3': 1.0, 'MRR': 0.5}
    """
    top_n = check_int(top_n, "top_n", minimum=1)
    qrels = {qid: dict.fromkeys(ids, 1) for qid, ids in relevant.items()}
    run = {
        qid: {doc: float(len(ranked) - rank) for rank, doc in enumerate(ranked)}
        for qid, ranked in rankings.items()
    }
    measures = {"hit@1": "Success@1", f"hit@{top_n}": f"Success@{top_n}", "MRR": "RR"}
    per_query = per_query_metrics(qrels, run, measures, list(qrels))
    return {name: sum(values.values()) / len(qrels) for name, values in per_query.items()}


@renamed_arguments(depth="top_n")
def evaluate_runs(
    dataset: Dataset,
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    first_stage: str,
    top_n: int = 100,
    relevance_level: int = 1,
    timings: Mapping[str, Timing] | None = None,
) -> EvalReport:
    """Score runs against ``dataset.qrels`` and compare each with the run named ``first_stage``.

    Args:
        dataset: The collection; its judged queries are the ones averaged over.
        runs: ``{system name: run}``; must contain ``first_stage``.
        first_stage: Name of the baseline run.
        top_n: Recall cut-off (how many candidates were reranked).
        relevance_level: Minimum grade counted as relevant by MRR@10 and Recall.
        timings: Optional ``{system name: Timing}`` for the speed columns.

    Raises:
        DatasetError: No query has judgments, or no judged query has a first-stage
            candidate (the ids do not match): there would be nothing to measure.
        ValueError: ``runs`` has no run named ``first_stage``, or ``top_n`` is below 1.
        TypeError: ``top_n`` is not an int, or ``depth=`` (renamed ``top_n``).
    """
    top_n = check_int(top_n, "top_n", minimum=1)
    if first_stage not in runs:
        raise ValueError(f"runs has no first-stage run named {first_stage!r}")
    check_evaluable(dataset, runs[first_stage], source=first_stage)
    measures = measure_names(top_n, relevance_level)
    query_ids = dataset.judged_query_ids
    order = [first_stage, *(name for name in runs if name != first_stage)]
    systems: list[SystemResult] = []
    for name in order:
        per_query = per_query_metrics(dataset.qrels, runs[name], measures, query_ids)
        metrics = {m: statistics.fmean(v.values()) if v else 0.0 for m, v in per_query.items()}
        result = SystemResult(name, metrics, per_query, (timings or {}).get(name))
        if systems:
            result.wins, result.losses, result.ties = wins_losses(
                systems[0].per_query["nDCG@10"], per_query["nDCG@10"]
            )
        systems.append(result)
    missing = sum(1 for qid in query_ids if not runs[first_stage].get(qid))
    notes = (
        [f"{missing} judged queries have no first-stage candidates (scored 0)"] if missing else []
    )
    return EvalReport(
        dataset.name,
        first_stage,
        top_n,
        relevance_level,
        query_ids,
        measures,
        systems,
        dataset.qrels_check,
        notes,
    )


@renamed_arguments(depth="top_n")
def evaluate(
    dataset: Dataset,
    first_stage: Mapping[str, Mapping[str, float]],
    rerankers: Mapping[str, Reranker],
    *,
    first_stage_name: str = "first stage",
    top_n: int = 100,
    relevance_level: int = 1,
    progress: bool | None = None,
) -> EvalReport:
    """Rerank the top ``top_n`` of ``first_stage`` with each reranker (:func:`rerank_run`)
    and evaluate everything (:func:`evaluate_runs`).

    Raises:
        ValueError: Two systems with one name, or what the two functions raise.

    Example (``data``: a loaded collection; ``bm25_run``: its first-stage run)::

        report = evaluate(data, bm25_run, {"ce": CrossEncoderReranker(path)})
        print(report.to_markdown())
    """
    runs: dict[str, Mapping[str, Mapping[str, float]]] = {first_stage_name: first_stage}
    timings: dict[str, Timing] = {}
    for name, reranker in rerankers.items():
        if name in runs:
            raise ValueError(f"two systems are named {name!r}")
        runs[name], timings[name] = rerank_run(
            reranker, dataset, first_stage, top_n=top_n, progress=progress, desc=name
        )
    return evaluate_runs(
        dataset,
        runs,
        first_stage=first_stage_name,
        top_n=top_n,
        relevance_level=relevance_level,
        timings=timings,
    )
