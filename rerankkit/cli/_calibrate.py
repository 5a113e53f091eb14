"""``rerankkit calibrate``: fit a reranker's score -> P(relevant) map on judged data, or check
one on another collection.

Examples (from the project root, with the test collections beside it)::

    rerankkit calibrate --data ../shared/data/trec-dl-2019-passage \\
        --run ../shared/data/trec-dl-2019-passage/runs/bm25-top100.trec --relevance-level 2 \\
        --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce --output ce.cal.json
    rerankkit calibrate --data ../shared/data/noveleval-2306 --all-judged --relevance-level 2 \\
        --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce --calibration ce.cal.json

The first fits (Platt and isotonic, the lower held-out log-loss wins), writes ``ce.cal.json``
and the reliability diagram ``ce.cal.png``, and prints ECE/Brier before and after and the
``min_relevance`` for target precisions and recalls. The second applies an existing file to a
collection it was not fitted on and prints the same figures there (``--output`` then names the
PNG). ``--qrels FILE`` replaces the collection's judgments (e.g. ``rerankkit judge``'s).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from rerankkit.cli._options import (
    CliError,
    Options,
    add_model_options,
    checked_spec,
    model_from_args,
)
from rerankkit.eval._runs import FIRST_STAGES


class CalibrateOptions(Options):
    """The options of ``rerankkit calibrate``."""

    data: Path
    """folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv"""
    reranker: str = Field(json_schema_extra={"metavar": ["SPEC"]})
    """the reranker to calibrate"""
    run: Path | None = None
    """first-stage TREC run file whose candidates are scored"""
    first_stage: str | None = None
    """or build the first stage: bm25, dense or hybrid"""
    all_judged: bool = False
    """or score every judged document of each query (a reranking set such as NovelEval)"""
    qrels: Path | None = None
    """judgments to use instead of the collection's (BEIR TSV: query-id, corpus-id, score),
    e.g. rerankkit judge's"""
    split: str = "test"
    """qrels split"""
    top_n: int = Field(100, ge=1)
    """first-stage candidates scored per query"""
    relevance_level: int = Field(1, ge=1)
    """minimum grade counted as relevant (TREC DL: 2)"""
    bm25_language: str = "english"
    """BM25 analyser language; 'none' for a plain regex tokenizer"""
    calibration: Path | None = None
    """check this calibration file on the data instead of fitting one"""
    output: Path | None = None
    """the calibration file to write (CAL.json; the reliability diagram goes beside it as
    CAL.png); with --calibration, the PNG to write"""
    progress: bool | None = None
    """progress bars (default: when stderr is a terminal)"""

    @model_validator(mode="after")
    def _one_source(self) -> CalibrateOptions:
        given = [self.run is not None, self.first_stage is not None, self.all_judged]
        if sum(given) != 1:
            raise ValueError("give exactly one of --run, --first-stage and --all-judged")
        if self.first_stage is not None and self.first_stage not in FIRST_STAGES:
            raise ValueError(f"--first-stage must be one of {', '.join(FIRST_STAGES)}")
        if self.calibration is None and self.output is None:
            raise ValueError("--output CAL.json is required when fitting (no --calibration)")
        return self


def add_parser(commands: Any) -> None:
    """Register ``calibrate`` on the ``rerankkit`` command's subparsers."""
    parser = commands.add_parser(
        "calibrate",
        help="map a reranker's scores to P(relevant) on judged data (for min_relevance)",
        description="Score judged candidates with --reranker and fit a monotone map from "
        "score to P(relevant) (Platt and isotonic; the lower held-out log-loss, split by "
        "query, wins). Writes the calibration file and a reliability diagram, and prints "
        "ECE/Brier before and after and thresholds for target precision/recall. With "
        "--calibration, checks an existing file on this data instead.",
    )
    add_model_options(parser, CalibrateOptions)
    parser.set_defaults(handler=run_calibrate)


def load_judged(
    data: Path, split: str, qrels: Path | None
) -> Any:  # a Dataset; Any keeps the eval import lazy
    """The collection, with ``qrels`` (a BEIR TSV file) instead of its own judgments."""
    from dataclasses import replace

    from rerankkit.eval._datasets import load_beir, parse_qrels, read_lines

    dataset = load_beir(data, split=split)
    if qrels is not None:
        judged = parse_qrels(read_lines(qrels), source=str(qrels))
        dataset = replace(dataset, qrels={q: j for q, j in judged.items() if q in dataset.queries})
    return dataset


def candidate_run(options: CalibrateOptions, dataset: Any) -> dict[str, dict[str, float]]:
    """The candidates to score: a run file, a first stage, or every judged document."""
    from rerankkit.eval._datasets import check_evaluable, check_run, load_trec_run
    from rerankkit.eval._runs import first_stage_run

    check_evaluable(dataset)
    if options.run is not None:
        raw = load_trec_run(options.run)
        check_evaluable(dataset, raw, source=str(options.run))
        return check_run(raw, dataset, source=str(options.run))
    if options.first_stage is not None:
        language = None if options.bm25_language.lower() == "none" else options.bm25_language
        return first_stage_run(
            dataset,
            options.first_stage,
            options.top_n,
            bm25_language=language,
            progress=options.progress,
        )
    return {
        qid: {doc: 0.0 for doc in judged if doc in dataset.corpus}
        for qid, judged in dataset.qrels.items()
    }


def run_calibrate(args: argparse.Namespace) -> int:
    from rerankkit._calibrated import CalibratedReranker, reranker_identity
    from rerankkit._specs import build_reranker
    from rerankkit.compose._calibration import Calibration
    from rerankkit.eval._calibrate import (
        fit_calibration,
        judged_labels,
        measures,
        plot_reliability,
        reliability_table,
        threshold_table,
    )
    from rerankkit.eval._runs import rerank_run

    options = model_from_args(CalibrateOptions, args)
    spec = checked_spec(options.reranker)
    if "calibration" in spec.options:
        raise CliError("argument --reranker: give the uncalibrated reranker's spec")
    existing = Calibration.load(options.calibration) if options.calibration else None
    dataset = load_judged(options.data, options.split, options.qrels)
    run = candidate_run(options, dataset)
    reranker = build_reranker(spec)
    if existing is not None:
        CalibratedReranker(reranker, existing)  # refuses a file fitted for another reranker
    scored, _ = rerank_run(
        reranker, dataset, run, top_n=options.top_n, progress=options.progress, desc="calibrate"
    )
    _, scores, labels = judged_labels(dataset.qrels, scored, options.relevance_level)
    flat_labels = [label for row in labels for label in row]
    fitted_on = {
        "data": str(options.data),
        "split": options.split,
        "qrels": str(options.qrels) if options.qrels else None,
        "candidates": str(options.run or options.first_stage or "all judged"),
        "top_n": options.top_n,
        "relevance_level": options.relevance_level,
    }
    if existing is None:
        assert options.output is not None  # the options' validator
        calibration = fit_calibration(
            scores, labels, reranker=reranker_identity(reranker), fitted_on=fitted_on
        )
        path = calibration.save(options.output)
        png = plot_reliability(
            {
                "raw scores (clipped to [0, 1])": calibration.metrics["reliability"]["before"],
                f"{calibration.method}, held out": calibration.metrics["reliability"][
                    "after_held_out"
                ],
            },
            path.with_suffix(".png"),
            title=spec.label,
        )
        sys.stdout.write(_fit_report(calibration.to_dict(), spec.label))
        sys.stdout.write(f"\nwrote {path}, {png}\n")
        return 0
    raw = [score for row in scores for score in row]
    flat = existing.apply(raw)
    summary = {
        "before": measures(raw, flat_labels),
        "after": measures(flat, flat_labels),
        "thresholds": threshold_table(flat, flat_labels),
        "pairs": len(flat),
        "positives": sum(flat_labels),
    }
    sys.stdout.write(_check_report(summary, spec.label, existing, fitted_on))
    if options.output is not None:
        png = plot_reliability(
            {
                "raw scores (clipped to [0, 1])": reliability_table(raw, flat_labels),
                "calibrated": reliability_table(flat, flat_labels),
            },
            options.output,
            title=f"{spec.label} on {dataset.name}",
        )
        sys.stdout.write(f"\nwrote {png}\n")
    return 0


def _fit_report(data: dict[str, Any], label: str) -> str:
    metrics = data["metrics"]
    losses = ", ".join(
        f"{method} {loss:.4f}" if loss is not None else f"{method} n/a"
        for method, loss in metrics["held_out_log_loss"].items()
    )
    lines = [
        f"# calibration of {label}",
        "",
        f"{metrics['pairs']} judged pairs ({metrics['positives']} relevant) over "
        f"{metrics['queries']} queries; held-out log-loss ({metrics['folds']} folds by query): "
        f"{losses}; chosen: **{metrics['chosen']}**",
        "",
        "| scores | ECE (10 bins) | Brier | log-loss |",
        "|---|---:|---:|---:|",
        _measure_row("raw (clipped to [0, 1])", metrics["before"]),
        _measure_row(f"{metrics['chosen']}, held out", metrics["after_held_out"]),
        "",
        *_threshold_lines(metrics["thresholds_held_out"]),
    ]
    return "\n".join(lines) + "\n"


def _check_report(
    summary: dict[str, Any], label: str, calibration: Any, fitted_on: dict[str, Any]
) -> str:
    lines = [
        f"# {calibration.method} calibration of {label} on {fitted_on['data']}",
        "",
        f"fitted on {calibration.fitted_on.get('data', '?')}; checked on {summary['pairs']} "
        f"judged pairs ({summary['positives']} relevant, grade >= "
        f"{fitted_on['relevance_level']})",
        "",
        "| scores | ECE (10 bins) | Brier | log-loss |",
        "|---|---:|---:|---:|",
        _measure_row("raw (clipped to [0, 1])", summary["before"]),
        _measure_row("calibrated", summary["after"]),
        "",
        *_threshold_lines(summary["thresholds"]),
    ]
    return "\n".join(lines) + "\n"


def _measure_row(name: str, values: dict[str, float]) -> str:
    return f"| {name} | {values['ece']:.4f} | {values['brier']:.4f} | {values['log_loss']:.4f} |"


def _threshold_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | min_relevance | precision | recall | kept |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        if row["threshold"] is None:
            lines.append(f"| {row['target']} | not reached | | | 0 |")
        else:
            lines.append(
                f"| {row['target']} | {row['threshold']:.4f} | {row['precision']:.3f} | "
                f"{row['recall']:.3f} | {row['kept']} |"
            )
    return lines
