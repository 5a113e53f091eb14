"""Per-query metrics through ir-measures (trec_eval's figures) and wins/losses between systems.

nDCG@10 uses the graded judgments; MRR@10 and Recall@top_n count grades >= a relevance level
as relevant (TREC DL passage convention: 2 for MRR). A query with judgments but no candidates
scores 0 (trec_eval ``-c``) rather than disappearing from the mean.

Example:
    >>> names = measure_names(10)
    >>> per_query_metrics({"q": {"a": 1}}, {"q": {"b": 2.0, "a": 1.0}}, names, ["q"])["MRR@10"]
    {'q': 0.5}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rerankkit._optional import require
from rerankkit._renamed import renamed_arguments
from rerankkit._validation import check_int

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
    ir_measures = require("ir_measures", "eval")
    RR, Success = ir_measures.RR, ir_measures.Success

    qrels = {qid: dict.fromkeys(ids, 1) for qid, ids in relevant.items()}
    run = {
        qid: {doc: float(len(ranked) - rank) for rank, doc in enumerate(ranked)}
        for qid, ranked in rankings.items()
        if qid in qrels and ranked
    }
    per_query: dict[str, dict[str, float]] = {qid: {} for qid in qrels}
    measures = {"hit@1": Success @ 1, f"hit@{top_n}": Success @ top_n, "MRR": RR}
    names = {str(measure): name for name, measure in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), qrels, run):
        per_query[metric.query_id][names[str(metric.measure)]] = metric.value
    return {
        name: sum(values.get(name, 0.0) for values in per_query.values()) / len(per_query)
        for name in measures
    }
