"""Calibrate three rerankers on TREC DL19, apply the maps to NovelEval and SciFact: ECE, precision.

    .venv/bin/python benchmarks/calibration_transfer.py  # -> reports/calibration_transfer.md

For each reranker (the test cross-encoder ``../shared/models/minilm-l6-msmarco-ce``, the
packaged bi-encoder ``embedding:`` = all-MiniLM-L6-v2, the late-interaction model
``../shared/models/minilm-l6-colbert``)
the same steps run, through the library calls ``rerankkit calibrate`` makes:

1. Score the BM25 top-100 of the 43 DL19 queries (``runs/bm25-top100.trec``) and fit the
   calibration on the DL19 qrels, relevant = grade >= 2 (TREC DL's binary convention:
   "highly relevant" and up): Platt and isotonic, the one with the lower held-out log-loss
   (5-fold split by query) wins (``rerankkit.eval.fit_calibration``).
2. Score two collections the map was not fitted on:

   - NovelEval-2306: the 20 candidates of each of its 21 questions (Google-search passages about
     2023 events), relevant = grade 2 ("relevant"; 1 is "partially relevant");
   - SciFact (BEIR test split, 300 claims, 5,183 abstracts): the BM25 top-20 of each claim
     (``first_stage_run(..., "bm25", 20)``, the collection's own BEIR BM25 setting), relevant =
     grade 1 (its qrels are binary: the abstract holds evidence for or against the claim;
     unjudged candidates count as not relevant).
3. On each test collection: ECE (10 equal-width bins) and Brier of the raw scores (clipped to
   [0, 1]; for the cosine and MaxSim scales only a reference) and of the calibrated ones; the
   precision of ``min_relevance=0.5`` (relevant share of the documents whose P(relevant)
   >= 0.5, over all queries) and how many queries abstain (no document reaches 0.5).

The relevance grade and the candidates of each collection are fixed above from the collections'
own definitions, before any figure was seen; nothing is tuned to the test collections. Scores are
cached under ``--cache-dir`` (gitignored ``reports/``), keyed by spec and collection; the cache is
filled in the order DL19, NovelEval, SciFact, one model after the other.
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
# --mean-maxsim: the late-interaction score divided by the query's token count, so that its
# scale does not grow with query length (the measured cause of its poor transfer)
MEAN_MAXSIM = {
    "late interaction, mean MaxSim (length_normalize)": (
        f"colbert:{SHARED}/models/minilm-l6-colbert?length_normalize=true"
    ),
}


# (folder name under ../shared/data, relevant from this grade, candidates scored per query)
TEST_COLLECTIONS = (
    ("noveleval-2306", 2, "all-judged"),
    ("scifact", 1, "bm25-top20"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-data", type=Path, default=SHARED / "data" / "trec-dl-2019-passage")
    parser.add_argument("--fit-run", type=Path, default=None, help="default: runs/bm25-top100.trec")
    parser.add_argument("--fit-level", type=int, default=2)
    parser.add_argument(
        "--test",
        action="append",
        metavar="DIR:LEVEL:CANDIDATES",
        help="a test collection (repeatable; CANDIDATES: all-judged or bm25-topN); default "
        + ", ".join(f"{name}:{level}:{cands}" for name, level, cands in TEST_COLLECTIONS)
        + " under ../shared/data",
    )
    parser.add_argument(
        "--test-queries",
        type=int,
        default=None,
        metavar="N",
        help="score only the first N judged queries (queries.jsonl order) of a test collection "
        "that has more (default: all)",
    )
    parser.add_argument(
        "--mean-maxsim",
        action="store_true",
        help="add the late-interaction model with length_normalize=true (mean MaxSim)",
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "reports" / "cache")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "calibration_transfer.md")
    parser.add_argument("--only-score", action="store_true", help="fill the score cache, stop")
    args = parser.parse_args(argv)
    args.specs = {**SPECS, **(MEAN_MAXSIM if args.mean_maxsim else {})}
    given = args.test or [f"{SHARED / 'data' / n}:{lv}:{c}" for n, lv, c in TEST_COLLECTIONS]
    args.tests = [parse_test(text) for text in given]
    return args


def parse_test(text: str) -> tuple[Path, int, str]:
    folder, level, candidates = text.rsplit(":", 2)
    if candidates != "all-judged" and not candidates.startswith("bm25-top"):
        raise SystemExit(f"--test {text}: CANDIDATES must be all-judged or bm25-topN")
    return Path(folder), int(level), candidates


def candidate_run(
    dataset: Any, candidates: str, cache: Path, name: str, queries: int | None
) -> dict[str, Any]:
    """The candidates to score, of the first ``queries`` judged queries: every judged
    document, or a BM25 top-N (cached: bm25s is deterministic, the cache saves the indexing)."""
    kept = dataset.judged_query_ids[:queries]
    if candidates == "all-judged":  # NovelEval: the 20 judged candidates of each question
        return {qid: {d: 0.0 for d in dataset.qrels[qid] if d in dataset.corpus} for qid in kept}
    from rerankkit.eval import first_stage_run

    path = cache / f"run__{name}__{candidates}.json"
    if path.is_file():
        run = json.loads(path.read_text())
    else:
        run = first_stage_run(dataset, "bm25", int(candidates.removeprefix("bm25-top")))
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run))
    return {qid: run[qid] for qid in kept}


def collection_scores(
    spec: str, data_dir: Path, candidates: str | Path, cache: Path, queries: int | None = None
) -> tuple[Any, dict[str, dict[str, float]]]:
    """``(dataset, {qid: {docid: score}})``: the reranker's scores of the candidates (a run
    file, ``all-judged`` or ``bm25-topN``) of the first ``queries`` judged queries, cached."""
    from rerankkit import build_reranker
    from rerankkit.eval import load_beir, load_trec_run, rerank_run

    dataset = load_beir(data_dir)
    if queries is not None and queries >= len(dataset.judged_query_ids):
        queries = None
    subset = "" if queries is None else f"-q{queries}"
    key = f"{spec.replace('/', '_').replace(':', '_')}__{data_dir.name}{subset}.json"
    path = cache / key
    if path.is_file():
        return dataset, json.loads(path.read_text())
    if isinstance(candidates, Path):
        run = load_trec_run(candidates)
    else:
        run = candidate_run(dataset, candidates, cache, data_dir.name, queries)
    scored, timing = rerank_run(build_reranker(spec), dataset, run, top_n=100, progress=False)
    logger.info("%s on %s: %d pairs", spec, data_dir.name, timing.pairs)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scored))
    return dataset, scored


def fit(spec: str, args: argparse.Namespace) -> tuple[Any, float]:
    """The DL19 calibration of ``spec`` and its ROC AUC on the fit collection."""
    from sklearn.metrics import roc_auc_score

    from rerankkit.eval import fit_calibration
    from rerankkit.eval._calibrate import judged_labels

    fit_run = args.fit_run or args.fit_data / "runs" / "bm25-top100.trec"
    fit_data, fit_scores = collection_scores(spec, args.fit_data, fit_run, args.cache_dir)
    _, scores, labels = judged_labels(fit_data.qrels, fit_scores, args.fit_level)
    calibration = fit_calibration(
        scores, labels, reranker=spec, fitted_on={"data": args.fit_data.name}
    )
    flat = [s for row in scores for s in row], [y for row in labels for y in row]
    return calibration, float(roc_auc_score(flat[1], flat[0]))


def transfer(
    spec: str, calibration: Any, test: tuple[Path, int, str], args: argparse.Namespace
) -> dict[str, Any]:
    """Apply a fitted calibration on one test collection: one table row's figures."""
    from sklearn.metrics import roc_auc_score  # discrimination, pooled over all pairs

    from rerankkit.eval._calibrate import judged_labels, measures, reliability_table

    data_dir, level, candidates = test
    test_data, test_scores = collection_scores(
        spec, data_dir, candidates, args.cache_dir, args.test_queries
    )
    _, raw_rows, label_rows = judged_labels(test_data.qrels, test_scores, level)
    raw = [s for row in raw_rows for s in row]
    flat_labels = [y for row in label_rows for y in row]
    calibrated_rows = [calibration.apply(row) for row in raw_rows]
    calibrated = [p for row in calibrated_rows for p in row]
    kept = [y for p, y in zip(calibrated, flat_labels, strict=True) if p >= 0.5]
    return {
        "fit_held_out": calibration.metrics["after_held_out"],
        "before": measures(raw, flat_labels),
        "after": measures(calibrated, flat_labels),
        "precision_at_0.5": sum(kept) / len(kept) if kept else None,
        "kept_at_0.5": len(kept),
        "abstained_at_0.5": sum(1 for row in calibrated_rows if max(row) < 0.5),
        "queries": len(raw_rows),
        "pairs": len(raw),
        "test_base_rate": sum(flat_labels) / len(flat_labels),
        "reliability": reliability_table(calibrated, flat_labels),
        "auc": roc_auc_score(flat_labels, raw),
    }


def markdown(
    calibrations: dict[str, tuple[Any, float]],
    results: dict[tuple[str, str], dict[str, Any]],
    args: argparse.Namespace,
) -> str:
    fit = args.fit_data.name
    tests = ", ".join(f"{d.name} ({c}, grade >= {lv})" for d, lv, c in args.tests)
    lines = [
        f"Calibrated on {fit} (BM25 top-100, grade >= {args.fit_level}), applied to {tests}; "
        "ECE with 10 equal-width bins.",
        "",
        "| reranker | map (held-out log-loss) | ECE on the fit collection, held out | test "
        "collection | ECE before -> after | Brier before -> after | precision at "
        "min_relevance=0.5 (kept; queries abstaining) | ROC AUC fit -> test |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for (name, test), r in results.items():
        calibration, fit_auc = calibrations[name]
        losses = calibration.metrics["held_out_log_loss"]
        shown = ", ".join(f"{m} {v:.3f}" for m, v in losses.items() if v is not None)
        precision = "n/a" if r["precision_at_0.5"] is None else f"{r['precision_at_0.5']:.3f}"
        lines.append(
            f"| {name} | **{calibration.method}** ({shown}) | {r['fit_held_out']['ece']:.3f} | "
            f"{test} | {r['before']['ece']:.3f} -> **{r['after']['ece']:.3f}** | "
            f"{r['before']['brier']:.3f} -> {r['after']['brier']:.3f} | {precision} "
            f"({r['kept_at_0.5']}; {r['abstained_at_0.5']} of {r['queries']}) | "
            f"{fit_auc:.3f} -> {r['auc']:.3f} |"
        )
    calibration = next(iter(calibrations.values()))[0]
    rates = {}
    for (_, test), r in results.items():
        rates[test] = f"{test} {r['test_base_rate']:.3f} ({r['pairs']} pairs)"
    fit_rate = calibration.metrics["positives"] / calibration.metrics["pairs"]
    lines += [
        "",
        f"Base rate (share relevant): {fit} {fit_rate:.3f} ({calibration.metrics['pairs']} "
        f'pairs), {", ".join(rates.values())}. "ECE before" of the bi-encoder (cosine) and the '
        "late-interaction model (MaxSim sum) clips their scores to [0, 1]: a reference, not a "
        "probability.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fit_run = args.fit_run or args.fit_data / "runs" / "bm25-top100.trec"
    for spec in args.specs.values():  # fill the cache, collection by collection
        collection_scores(spec, args.fit_data, fit_run, args.cache_dir)
    for data_dir, _, candidates in args.tests:
        for spec in args.specs.values():
            collection_scores(spec, data_dir, candidates, args.cache_dir, args.test_queries)
    if args.only_score:
        return 0
    calibrations = {name: fit(spec, args) for name, spec in args.specs.items()}
    results = {
        (name, test[0].name): transfer(spec, calibrations[name][0], test, args)
        for name, spec in args.specs.items()
        for test in args.tests
    }
    text = markdown(calibrations, results, args)
    command = "python benchmarks/calibration_transfer.py " + shlex.join(argv or sys.argv[1:])
    text += f"\nCommand: `{command.strip()}`\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
