"""Calibrate three rerankers on TREC DL19, apply the maps to NovelEval: ECE before/after.

    .venv/bin/python benchmarks/calibration_transfer.py  # -> reports/calibration_transfer.md

For each reranker (the test cross-encoder ``../shared/models/minilm-l6-msmarco-ce``, the
packaged bi-encoder ``embedding:`` = all-MiniLM-L6-v2, the late-interaction model
``../shared/models/minilm-l6-colbert``)
the same steps run, through the library calls ``rerankkit calibrate`` makes:

1. Score the BM25 top-100 of the 43 DL19 queries (``runs/bm25-top100.trec``) and fit the
   calibration on the DL19 qrels, relevant = grade >= 2 (TREC DL's binary convention:
   "highly relevant" and up): Platt and isotonic, the one with the lower held-out log-loss
   (5-fold split by query) wins (``rerankkit.eval.fit_calibration``).
2. Score the 20 candidates of each of the 21 NovelEval-2306 questions (a collection the map was not
   fitted on: Google-search passages about 2023 events), relevant = grade 2 ("relevant"; 1 is
   "partially relevant").
3. On NovelEval: ECE (10 equal-width bins) and Brier of the raw scores (clipped to [0, 1]; for
   the cosine and MaxSim scales this is only a reference) and of the calibrated ones; the precision
   of ``min_relevance=0.5`` (relevant share of the documents whose P(relevant) >= 0.5, over all
   queries) and how many queries abstain (no document reaches 0.5).

The relevance grade for each collection is fixed above from the collections' own definitions,
before any figure was seen; nothing is tuned to NovelEval. Scores are cached under ``--cache-dir``
(gitignored ``reports/``), keyed by spec and collection.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
logger = logging.getLogger("calibration_transfer")

SPECS = {
    "cross-encoder (minilm-l6-msmarco-ce)": f"cross-encoder:{SHARED}/models/minilm-l6-msmarco-ce",
    "bi-encoder (all-MiniLM-L6-v2, the default)": "embedding:",
    "late interaction (minilm-l6-colbert)": f"colbert:{SHARED}/models/minilm-l6-colbert",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-data", type=Path, default=SHARED / "data" / "trec-dl-2019-passage")
    parser.add_argument("--fit-run", type=Path, default=None, help="default: runs/bm25-top100.trec")
    parser.add_argument("--fit-level", type=int, default=2)
    parser.add_argument("--test-data", type=Path, default=SHARED / "data" / "noveleval-2306")
    parser.add_argument("--test-level", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "reports" / "cache")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "calibration_transfer.md")
    parser.add_argument("--only-score", action="store_true", help="fill the score cache, stop")
    return parser.parse_args(argv)


def collection_scores(spec: str, data_dir: Path, run_path: Path | None, cache: Path) -> Any:
    """``(dataset, {qid: {docid: score}})``: the reranker's scores of the candidates, cached."""
    from rerankkit import build_reranker
    from rerankkit.eval import load_beir, load_trec_run, rerank_run

    dataset = load_beir(data_dir)
    key = f"{spec.replace('/', '_').replace(':', '_')}__{data_dir.name}.json"
    path = cache / key
    if path.is_file():
        return dataset, json.loads(path.read_text())
    if run_path is not None:
        run = load_trec_run(run_path)
    else:  # every judged candidate of each query (NovelEval: the 20 of each question)
        run = {qid: {doc: 0.0 for doc in judged} for qid, judged in dataset.qrels.items()}
        run = {qid: {d: 0.0 for d in docs if d in dataset.corpus} for qid, docs in run.items()}
    scored, timing = rerank_run(build_reranker(spec), dataset, run, top_n=100, progress=False)
    logger.info("%s on %s: %d pairs", spec, data_dir.name, timing.pairs)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scored))
    return dataset, scored


def transfer(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fit on the fit collection, measure on the test collection: one table row's figures."""
    from rerankkit.eval import fit_calibration
    from rerankkit.eval._calibrate import judged_labels, measures, reliability_table

    fit_run = args.fit_run or args.fit_data / "runs" / "bm25-top100.trec"
    fit_data, fit_scores = collection_scores(spec, args.fit_data, fit_run, args.cache_dir)
    _, scores, labels = judged_labels(fit_data.qrels, fit_scores, args.fit_level)
    calibration = fit_calibration(
        scores, labels, reranker=spec, fitted_on={"data": args.fit_data.name}
    )
    test_data, test_scores = collection_scores(spec, args.test_data, None, args.cache_dir)
    _, raw_rows, label_rows = judged_labels(test_data.qrels, test_scores, args.test_level)
    raw = [s for row in raw_rows for s in row]
    flat_labels = [y for row in label_rows for y in row]
    calibrated_rows = [calibration.apply(row) for row in raw_rows]
    calibrated = [p for row in calibrated_rows for p in row]
    kept = [y for p, y in zip(calibrated, flat_labels, strict=True) if p >= 0.5]
    from sklearn.metrics import roc_auc_score  # discrimination, pooled over all pairs

    fit_flat = [s for row in scores for s in row], [y for row in labels for y in row]
    auc = (roc_auc_score(fit_flat[1], fit_flat[0]), roc_auc_score(flat_labels, raw))
    abstained = sum(1 for row in calibrated_rows if max(row) < 0.5)
    return {
        "calibration": calibration,
        "fit_held_out": calibration.metrics["after_held_out"],
        "before": measures(raw, flat_labels),
        "after": measures(calibrated, flat_labels),
        "precision_at_0.5": sum(kept) / len(kept) if kept else None,
        "kept_at_0.5": len(kept),
        "abstained_at_0.5": abstained,
        "queries": len(raw_rows),
        "pairs": len(raw),
        "test_base_rate": sum(flat_labels) / len(flat_labels),
        "fit_base_rate": calibration.metrics["positives"] / calibration.metrics["pairs"],
        "reliability": reliability_table(calibrated, flat_labels),
        "auc": auc,
    }


def markdown(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    fit, test = args.fit_data.name, args.test_data.name
    lines = [
        f"Calibrated on {fit} (BM25 top-100, grade >= {args.fit_level}), applied to {test} "
        f"(grade >= {args.test_level}); ECE with 10 equal-width bins.",
        "",
        f"| reranker | map (held-out log-loss) | ECE on {fit}, held out | ECE on {test} "
        "before -> after | Brier before -> after | precision at min_relevance=0.5 (kept; "
        "queries abstaining) | ROC AUC fit -> test |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        losses = r["calibration"].metrics["held_out_log_loss"]
        shown = ", ".join(f"{m} {v:.3f}" for m, v in losses.items() if v is not None)
        precision = "n/a" if r["precision_at_0.5"] is None else f"{r['precision_at_0.5']:.3f}"
        lines.append(
            f"| {name} | **{r['calibration'].method}** ({shown}) | {r['fit_held_out']['ece']:.3f}"
            f" | {r['before']['ece']:.3f} -> **{r['after']['ece']:.3f}** | "
            f"{r['before']['brier']:.3f} -> {r['after']['brier']:.3f} | {precision} "
            f"({r['kept_at_0.5']}; {r['abstained_at_0.5']} of {r['queries']}) | "
            f"{r['auc'][0]:.3f} -> {r['auc'][1]:.3f} |"
        )
    any_result = next(iter(results.values()))
    lines += [
        "",
        f"Base rate (share relevant): {fit} {any_result['fit_base_rate']:.3f}, {test} "
        f'{any_result["test_base_rate"]:.3f} ({any_result["pairs"]} pairs). "ECE before" of the '
        "bi-encoder (cosine) and the late-interaction model (MaxSim sum) clips their scores to "
        "[0, 1]: a reference, not a probability.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fit_run = args.fit_run or args.fit_data / "runs" / "bm25-top100.trec"
    for spec in SPECS.values():
        collection_scores(spec, args.fit_data, fit_run, args.cache_dir)
        collection_scores(spec, args.test_data, None, args.cache_dir)
    if args.only_score:
        return 0
    results = {name: transfer(spec, args) for name, spec in SPECS.items()}
    text = markdown(results, args)
    command = "python benchmarks/calibration_transfer.py " + shlex.join(argv or sys.argv[1:])
    text += f"\nCommand: `{command.strip()}`\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
