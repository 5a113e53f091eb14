"""Measure rerankers on a test collection: metrics, per-query wins/losses, speed, reports.

The flow is: a first-stage run (a TREC file, or BM25 / dense / hybrid built here with
:mod:`rerankkit.eval.retrieval`) -> each reranker reorders every query's top ``depth`` candidates
(:func:`rerank_run`) -> :func:`evaluate_runs` scores all runs against the qrels and compares each
with the first stage -> :class:`EvalReport` writes JSON, markdown and a PNG plot.

Metrics come from ir-measures (pytrec_eval underneath), so figures are trec_eval's: nDCG@10
(graded), MRR@10 and Recall@depth with a relevance level (grades >= ``relevance_level`` count
as relevant; TREC DL passage convention is 2 for MRR). Queries with judgments but no candidates
score 0 (trec_eval ``-c``) rather than disappearing from the mean.

Example:
    >>> from rerankkit.eval.datasets import Dataset
    >>> from rerankkit.testing import KeywordReranker
    >>> data = Dataset("toy", corpus={"d1": "red apple", "d2": "green pear"},
    ...                queries={"q1": "pear"}, qrels={"q1": {"d2": 1}})
    >>> first = {"q1": {"d1": 2.0, "d2": 1.0}}
    >>> report = evaluate(data, first, {"keyword": KeywordReranker()}, depth=2, progress=False)
    >>> report.systems[0].metrics["nDCG@10"], report.systems[1].metrics["nDCG@10"]
    (0.6309297535714575, 1.0)
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankkit._base import Reranker
from rerankkit._optional import require
from rerankkit._validation import check_choice, check_int
from rerankkit.eval.datasets import Dataset, QrelsCheck, Run

logger = logging.getLogger(__name__)

FIRST_STAGES = ("bm25", "dense", "hybrid")
_TIE = 1e-9  # per-query metric differences below this are ties, not wins


# --------------------------------------------------------------------------- first stage


def first_stage_run(
    dataset: Dataset,
    method: str,
    k: int = 100,
    *,
    bm25_language: str | None = "english",
    encoder: Any = None,
) -> Run:
    """Retrieve ``k`` candidates per judged query with BM25, dense search, or their RRF.

    Args:
        dataset: The collection (only its judged queries are searched).
        method: ``"bm25"`` (bm25s), ``"dense"`` (bi-encoder, exact cosine), or ``"hybrid"``
            (reciprocal rank fusion of both, k=60).
        k: Candidates per query.
        bm25_language: Analyser language for BM25 (``None``: a plain regex tokenizer with no
            stemming or stopwords, the right choice for Korean and other unsupported scripts).
        encoder: Anything with ``embed(texts)`` for dense search; default the packaged
            all-MiniLM-L6-v2 bi-encoder.

    Example (``data`` from :func:`rerankkit.eval.datasets.load_beir`)::

        run = first_stage_run(data, "bm25", 100)
    """
    check_choice(method, "method", FIRST_STAGES)
    from rerankkit.eval.retrieval import bm25_search, dense_search

    queries = {qid: dataset.queries[qid] for qid in dataset.judged_query_ids}
    runs: list[Any] = []  # retrieval's runs are keyed by the ids we pass: str here
    if method in ("bm25", "hybrid"):
        runs.append(bm25_search(dataset.corpus, queries, k, language=bm25_language))
    if method in ("dense", "hybrid"):
        if encoder is None:
            from rerankkit.specs import build_reranker

            encoder = build_reranker("embedding:")
        runs.append(dense_search(dataset.corpus, queries, k, encoder=encoder))
    if len(runs) == 1:
        return runs[0]  # type: ignore[no-any-return]
    from rerankkit.compose.fusion import fuse_runs

    return fuse_runs(runs, top_n=k)  # type: ignore[return-value]


def candidates(run: Mapping[str, Mapping[str, float]], depth: int) -> dict[str, list[str]]:
    """Each query's top ``depth`` document ids, best first.

    Ties are broken as trec_eval does (document id descending), so the candidate set is the
    one the first stage is evaluated on.

    Example:
        >>> candidates({"q": {"a": 1.0, "b": 3.0, "c": 1.0}}, 2)
        {'q': ['b', 'c']}
    """
    depth = check_int(depth, "depth", minimum=1)
    ranked: dict[str, list[str]] = {}
    for qid, scores in run.items():
        order = sorted(scores, reverse=True)  # doc id descending ...
        order.sort(key=lambda doc_id: scores[doc_id], reverse=True)  # ... then score (stable)
        ranked[qid] = order[:depth]
    return ranked


# --------------------------------------------------------------------------- reranking


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock cost of reranking a run (model loading excluded).

    Attributes:
        queries: Queries reranked.
        pairs: (query, document) pairs scored.
        seconds: Total scoring time.
        latencies_ms: Per-query scoring time, in run order.
        batched: Work was shared across queries (each unique text embedded once), so the
            per-query latencies are the total divided evenly: throughput, not a latency a
            single request would see.
    """

    queries: int
    pairs: int
    seconds: float
    latencies_ms: tuple[float, ...] = ()
    batched: bool = False

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else math.inf

    @property
    def latency_ms_mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0

    def latency_ms_quantile(self, q: float) -> float:
        """Latency quantile (nearest rank), e.g. ``q=0.95``."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "pairs": self.pairs,
            "seconds": round(self.seconds, 4),
            "pairs_per_second": round(self.pairs_per_second, 1),
            "latency_ms_mean": round(self.latency_ms_mean, 2),
            "latency_ms_p50": round(self.latency_ms_quantile(0.5), 2),
            "latency_ms_p95": round(self.latency_ms_quantile(0.95), 2),
            "batched_across_queries": self.batched,
        }


def _progress_enabled(progress: bool | None) -> bool:
    # Default: bars only for a person watching a terminal; logs, CI and notebooks stay clean.
    return sys.stderr.isatty() if progress is None else progress


def _progress(items: Sequence[str], enabled: bool, desc: str) -> Iterable[str]:
    if not enabled:
        return items
    tqdm = require("tqdm", "eval").tqdm
    return tqdm(items, desc=desc, unit="query", leave=False, file=sys.stderr)  # type: ignore[no-any-return]


def _bi_encoder(reranker: Reranker) -> Any:
    """The reranker if it is an ``EmbeddingReranker`` (checked without importing torch)."""
    module = sys.modules.get("rerankkit.backends.embedding")
    cls = getattr(module, "EmbeddingReranker", None)
    return reranker if cls is not None and type(reranker) is cls else None


def _score_bi_encoder_batched(
    encoder: Any, queries: list[str], doc_lists: list[list[str]]
) -> list[list[float]]:
    # A bi-encoder's score is a dot product of independent embeddings, so each unique text is
    # embedded once for the whole run, in length-sorted batches across queries: the same
    # scores as per-query calls (up to float rounding), far less work when candidate lists
    # overlap (a 720-passage corpus searched by 114 queries embeds 720 texts, not 11,400).
    import numpy as np

    unique_docs = list(dict.fromkeys(doc for docs in doc_lists for doc in docs))
    position = {doc: i for i, doc in enumerate(unique_docs)}
    doc_vectors = encoder.embed([encoder.document_prefix + doc for doc in unique_docs])
    query_vectors = encoder.embed([encoder.query_prefix + query for query in queries])
    scores = []
    for query_vector, docs in zip(query_vectors, doc_lists, strict=True):
        rows = doc_vectors[np.asarray([position[doc] for doc in docs], dtype=np.int64)]
        scores.append((rows @ query_vector).astype(float).tolist())
    return scores


def rerank_run(
    reranker: Reranker,
    dataset: Dataset,
    run: Mapping[str, Mapping[str, float]],
    *,
    depth: int = 100,
    only_judged: bool = True,
    batch_queries: bool | None = None,
    progress: bool | None = None,
    desc: str = "rerank",
) -> tuple[Run, Timing]:
    """Rerank each query's top ``depth`` candidates of ``run``.

    With ``only_judged`` (the default) queries without judgments are skipped: they cannot
    change any metric.

    By default each query is one ``reranker.score`` call, so the backend batches (and
    length-sorts) that query's candidates itself and the per-query latency is what a RAG
    pipeline pays. ``batch_queries`` (default: where the backend benefits, i.e. an
    ``EmbeddingReranker``) shares the work across queries instead: each unique text is
    embedded once; the timing then reports throughput with amortised latencies.

    Returns:
        The reranked run ``{qid: {docid: score}}`` (only the ``depth`` reranked documents) and
        its :class:`Timing`.

    Example (``data``: a loaded collection; ``first``: its first-stage run)::

        reranked, timing = rerank_run(KeywordReranker(), data, first)
    """
    ranked = candidates(run, depth)
    wanted = dataset.qrels if only_judged else dataset.queries
    query_ids = [qid for qid in ranked if qid in wanted and qid in dataset.queries and ranked[qid]]
    encoder = _bi_encoder(reranker) if batch_queries is not False else None
    if batch_queries and encoder is None:
        raise ValueError(f"batch_queries=True needs an EmbeddingReranker, got {reranker!r}")
    if encoder is not None:
        return _rerank_batched(encoder, dataset, ranked, query_ids, desc)
    out: Run = {}
    latencies: list[float] = []
    pairs = 0
    for qid in _progress(query_ids, _progress_enabled(progress), desc):
        doc_ids = ranked[qid]
        texts = [dataset.corpus[doc_id] for doc_id in doc_ids]
        start = time.perf_counter()
        scores = reranker.score(dataset.queries[qid], texts)
        latencies.append((time.perf_counter() - start) * 1000.0)
        pairs += len(texts)
        # pytrec_eval needs finite scores; -inf (a NaN the core cleaned) sorts last anyway.
        out[qid] = {
            doc_id: score if math.isfinite(score) else -1e30
            for doc_id, score in zip(doc_ids, scores, strict=True)
        }
    timing = Timing(len(query_ids), pairs, sum(latencies) / 1000.0, tuple(latencies))
    logger.info(
        "%s: %d queries, %d pairs, %.1f pairs/s",
        desc,
        timing.queries,
        pairs,
        timing.pairs_per_second,
    )
    return out, timing


def _rerank_batched(
    encoder: Any,
    dataset: Dataset,
    ranked: Mapping[str, list[str]],
    query_ids: list[str],
    desc: str,
) -> tuple[Run, Timing]:
    doc_lists = [[dataset.corpus[doc_id] for doc_id in ranked[qid]] for qid in query_ids]
    start = time.perf_counter()
    scores = _score_bi_encoder_batched(
        encoder, [dataset.queries[qid] for qid in query_ids], doc_lists
    )
    seconds = time.perf_counter() - start
    out: Run = {}
    for qid, row in zip(query_ids, scores, strict=True):
        # The same NaN rule as the core's Reranker.score: NaN ranks last, with a warning.
        if any(math.isnan(score) for score in row):
            logger.warning("%s: NaN scores for query %s ranked last", desc, qid)
        out[qid] = {
            doc_id: score if math.isfinite(score) else -1e30
            for doc_id, score in zip(ranked[qid], row, strict=True)
        }
    pairs = sum(len(row) for row in scores)
    share = seconds * 1000.0 / max(1, len(query_ids))
    timing = Timing(len(query_ids), pairs, seconds, (share,) * len(query_ids), batched=True)
    logger.info(
        "%s: %d queries, %d pairs, %.1f pairs/s (batched across queries)",
        desc,
        timing.queries,
        pairs,
        timing.pairs_per_second,
    )
    return out, timing


# --------------------------------------------------------------------------- metrics


def measure_names(depth: int, relevance_level: int = 1) -> dict[str, str]:
    """Report names -> ir-measures measure strings.

    Example:
        >>> measure_names(100, 2)
        {'nDCG@10': 'nDCG@10', 'MRR@10': 'RR(rel=2)@10', 'Recall@100': 'R(rel=2)@100'}
    """
    rel = "" if relevance_level == 1 else f"(rel={relevance_level})"
    return {"nDCG@10": "nDCG@10", "MRR@10": f"RR{rel}@10", f"Recall@{depth}": f"R{rel}@{depth}"}


def per_query_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    measures: Mapping[str, str],
    query_ids: Sequence[str],
) -> dict[str, dict[str, float]]:
    """``{report name: {qid: value}}`` for every query in ``query_ids`` (missing -> 0.0).

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


# --------------------------------------------------------------------------- report


@dataclass
class SystemResult:
    """One system's figures. ``wins``/``losses``/``ties`` compare nDCG@10 per query with the
    first stage (``None`` for the first stage itself)."""

    name: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    timing: Timing | None = None
    wins: int | None = None
    losses: int | None = None
    ties: int | None = None

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "metrics": self.metrics}
        if self.wins is not None:
            out["vs_first_stage"] = {"wins": self.wins, "losses": self.losses, "ties": self.ties}
        if self.timing is not None:
            out["timing"] = self.timing.to_dict()
        if per_query:
            out["per_query"] = self.per_query
        return out


@dataclass
class EvalReport:
    """Everything an evaluation measured; ``systems[0]`` is the first stage."""

    dataset: str
    first_stage: str
    depth: int
    relevance_level: int
    query_ids: list[str]
    measures: dict[str, str]
    systems: list[SystemResult]
    qrels_check: QrelsCheck | None = None
    notes: list[str] = field(default_factory=list)

    def system(self, name: str) -> SystemResult:
        """The result of the system called ``name``."""
        for result in self.systems:
            if result.name == name:
                return result
        raise KeyError(f"no system named {name!r} (have: {[s.name for s in self.systems]})")

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        """JSON-ready dict: settings, qrels check, and each system's figures."""
        return {
            "dataset": self.dataset,
            "first_stage": self.first_stage,
            "depth": self.depth,
            "relevance_level": self.relevance_level,
            "queries": len(self.query_ids),
            "measures": self.measures,
            "qrels_check": self.qrels_check.to_dict() if self.qrels_check else None,
            "notes": self.notes,
            "systems": [s.to_dict(per_query=per_query) for s in self.systems],
        }

    def to_markdown(self) -> str:
        """A markdown table (one row per system) with the settings above it."""
        names = list(self.measures)
        lines = [
            f"**{self.dataset}**: {len(self.query_ids)} queries, first stage {self.first_stage}, "
            f"rerank depth {self.depth}, relevant = grade >= {self.relevance_level} "
            f"for MRR/Recall (nDCG uses the grades).",
            "",
            "| system | " + " | ".join(names) + " | wins/losses vs first stage (nDCG@10) "
            "| ms/query | pairs/s |",
            "|---|" + "---:|" * len(names) + "---|---:|---:|",
        ]
        for s in self.systems:
            figures = " | ".join(f"{s.metrics[name]:.4f}" for name in names)
            versus = "-" if s.wins is None else f"{s.wins}/{s.losses} ({s.ties} ties)"
            if s.timing is None:
                speed = "- | -"
            else:
                mark = "*" if s.timing.batched else ""
                speed = f"{s.timing.latency_ms_mean:.1f}{mark} | {s.timing.pairs_per_second:.0f}"
            lines.append(f"| {s.name} | {figures} | {versus} | {speed} |")
        if any(s.timing is not None and s.timing.batched for s in self.systems):
            lines += [
                "",
                "\\* amortised: texts embedded once for all queries (throughput, not "
                "single-request latency).",
            ]
        check = self.qrels_check
        if check and (check.unknown_query_judgments or check.unknown_document_judgments):
            lines += [
                "",
                f"qrels: {check.judgments} judgments; {check.unknown_query_judgments} for queries "
                f"not in queries.jsonl (ignored), {check.unknown_document_judgments} for "
                "documents not in corpus.jsonl (kept: they count for the ideal ranking).",
            ]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Save a PNG: metrics per system (bars) and per-query nDCG@10 change vs the first stage."""
        return plot_report(self, path)

    def save(self, directory: str | Path, *, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / f"{stem}.json",
            "markdown": out / f"{stem}.md",
            "png": out / f"{stem}.png",
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        self.plot(paths["png"])
        return paths


def plot_report(report: EvalReport, path: str | Path) -> Path:
    """Draw ``report`` to a PNG with matplotlib's Agg canvas (no display, no pyplot state)."""
    require("matplotlib", "eval")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(report.measures)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    bars, deltas = fig.subplots(1, 2, width_ratios=[1.1, 1])
    width = 0.8 / max(1, len(report.systems))
    for i, system in enumerate(report.systems):
        xs = [j + (i - (len(report.systems) - 1) / 2) * width for j in range(len(names))]
        values = [system.metrics[name] for name in names]
        drawn = bars.bar(xs, values, width, label=system.name)
        bars.bar_label(drawn, fmt="%.3f", fontsize=7, padding=1)
    bars.set_xticks(range(len(names)), names)
    bars.set_ylim(0, 1.08)
    bars.set_title(f"{report.dataset}: {len(report.query_ids)} queries, depth {report.depth}")
    bars.legend(fontsize=8, loc="upper left")
    base = report.systems[0].per_query["nDCG@10"]
    for system in report.systems[1:]:
        change = sorted(system.per_query["nDCG@10"][q] - base[q] for q in report.query_ids)
        deltas.plot(range(1, len(change) + 1), change, marker=".", label=system.name)
    deltas.axhline(0.0, color="grey", linewidth=0.8)
    deltas.set_xlabel("queries, sorted by change")
    deltas.set_ylabel(f"nDCG@10 change vs {report.first_stage}")
    deltas.set_title("per-query wins (above 0) and losses (below 0)")
    if len(report.systems) > 1:
        deltas.legend(fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=110, format="png")
    return path


def evaluate_runs(
    dataset: Dataset,
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    first_stage: str,
    depth: int = 100,
    relevance_level: int = 1,
    timings: Mapping[str, Timing] | None = None,
) -> EvalReport:
    """Score runs against ``dataset.qrels`` and compare each with the run named ``first_stage``.

    Args:
        dataset: The collection; its judged queries are the ones averaged over.
        runs: ``{system name: run}``; must contain ``first_stage``.
        first_stage: Name of the baseline run.
        depth: Recall cut-off (the rerank depth).
        relevance_level: Minimum grade counted as relevant by MRR@10 and Recall.
        timings: Optional ``{system name: Timing}`` for the speed columns.
    """
    if first_stage not in runs:
        raise ValueError(f"runs has no first-stage run named {first_stage!r}")
    measures = measure_names(depth, relevance_level)
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
        depth,
        relevance_level,
        query_ids,
        measures,
        systems,
        dataset.qrels_check,
        notes,
    )


def evaluate(
    dataset: Dataset,
    first_stage: Mapping[str, Mapping[str, float]],
    rerankers: Mapping[str, Reranker],
    *,
    first_stage_name: str = "first stage",
    depth: int = 100,
    relevance_level: int = 1,
    progress: bool | None = None,
) -> EvalReport:
    """Rerank ``first_stage`` with each reranker and evaluate everything.

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
            reranker, dataset, first_stage, depth=depth, progress=progress, desc=name
        )
    return evaluate_runs(
        dataset,
        runs,
        first_stage=first_stage_name,
        depth=depth,
        relevance_level=relevance_level,
        timings=timings,
    )


__all__ = [
    "FIRST_STAGES",
    "EvalReport",
    "SystemResult",
    "Timing",
    "candidates",
    "evaluate",
    "evaluate_runs",
    "first_stage_run",
    "measure_names",
    "per_query_metrics",
    "plot_report",
    "rerank_run",
    "wins_losses",
]
