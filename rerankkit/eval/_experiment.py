"""Measure rerankers on a test collection: the ``evaluate`` and ``evaluate_runs`` entry points.

The flow is: a first-stage run (a TREC file, or BM25 / dense / hybrid built by
:func:`rerankkit.eval.first_stage_run`) -> each reranker reorders every query's top ``top_n``
candidates (:func:`rerankkit.eval.rerank_run`) -> :func:`evaluate_runs` scores all runs
against the qrels (:func:`rerankkit.eval.per_query_metrics`) and compares each with the first
stage -> :class:`rerankkit.eval.EvalReport` writes JSON, markdown and a PNG plot.

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
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from rerankkit._base import Reranker
from rerankkit._renamed import renamed_arguments
from rerankkit._validation import check_int
from rerankkit.eval._datasets import Dataset, check_evaluable
from rerankkit.eval._metrics import measure_names, per_query_metrics, wins_losses
from rerankkit.eval._report import EvalReport, SystemResult
from rerankkit.eval._runs import Timing, rerank_run


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
    missing = [qid for qid in query_ids if not runs[first_stage].get(qid)]
    notes = []
    if missing:
        notes.append(f"{len(missing)} judged queries have no first-stage candidates (scored 0)")
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
