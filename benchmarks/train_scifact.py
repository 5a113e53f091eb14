"""Fine-tune the test cross-encoder on SciFact train (mined hard negatives); nDCG@10 before/after.

    .venv/bin/python benchmarks/train_scifact.py                      # bce, margin, marginmse
    .venv/bin/python benchmarks/train_scifact.py --losses margin --max-steps 60 --max-queries 200

What it does, with rerankkit's own parts:
- test first stage: BM25 (``first_stage_run``, bm25s, English) top-100 over SciFact test (300
  queries), the same first stage as ``rerankkit eval --first-stage bm25``;
- ``before``: the starting model (../shared/models/minilm-l6-msmarco-ce) reranking it;
- per loss: ``rerankkit.train.train`` on SciFact train (807 claims; ``--max-queries`` for a
  seeded sample) with BM25 hard negatives (``--negatives`` per claim drawn at random from ranks
  ``--ranks``, default 1-30, judged positives skipped), ``--max-steps`` steps of
  ``--pairs-per-step`` pairs (a bce row is a pair, a triple is two), then the trained model
  reranking the same candidates. ``marginmse`` distils a teacher given as reranker specs
  (default: the BCE run's output fused with the packaged bi-encoder, z-scored per query);
- scoring in stages of depth (``--stages 20 100``): the top 20 of every query for every model
  first, then ranks 21-100, so the depth-20 figures exist early on a busy machine; nDCG@10 is
  reported for each depth reached. Scores are pointwise, so depth 100 = stage 1 + stage 2.

Results: ``--out`` (default reports/train_scifact): ``results.json`` (updated after every
step), ``results.md``, ``scores/`` (each model's scores per stage, reused when the script
runs again), and one model folder per loss (with its card). Scoring dtype: ``auto``
(bf16 on a CPU with AVX512-BF16), max_length 256 for training and scoring.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
logger = logging.getLogger("train_scifact")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "scifact")
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "minilm-l6-msmarco-ce")
    parser.add_argument("--losses", nargs="+", default=["bce", "margin", "marginmse"])
    parser.add_argument(
        "--teacher", nargs="+", default=None, help="default: bce output + embedding:"
    )
    parser.add_argument("--max-steps", type=int, default=260)
    parser.add_argument("--pairs-per-step", type=int, default=16, help="bce rows; triples: half")
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--max-queries", type=int, default=None, help="seeded sample of train")
    parser.add_argument("--ranks", type=int, nargs=2, default=[1, 30])
    parser.add_argument("--sampling", default="random")
    parser.add_argument("--learning-rate", type=float, default=4e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stages", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "train_scifact")
    parser.add_argument(
        "--benchmarks", type=Path, default=None, help="write the section into this BENCHMARKS.md"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the reports from results.json"
    )
    return parser.parse_args(argv)


def cpu_line() -> str:
    from rerankkit.backends._speed import cpu_description, cpu_flags, speed_flags

    return f"{cpu_description()}; flags: {speed_flags(cpu_flags())}; load average {os.getloadavg()}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from rerankkit.backends._cross_encoder import CrossEncoderReranker
    from rerankkit.eval import candidates, evaluate_runs, rerank_run
    from rerankkit.train._evaluation import EvalSettings, evaluation_record, load_test
    from rerankkit.train._trainer import TrainConfig, train, write_record

    args.out.mkdir(parents=True, exist_ok=True)
    stages = sorted(set(args.stages))
    if args.report_only:
        saved = json.loads((args.out / "results.json").read_text())
        (args.out / "results.md").write_text(markdown(saved, stages))
        if args.benchmarks is not None:
            write_section(args.benchmarks, saved, stages)
        return 0
    settings = EvalSettings(
        data=str(args.data), top_n=stages[-1], max_length=args.max_length, dtype=args.dtype
    )
    results: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "cpu": cpu_line(),
        "settings": vars(args)
        | {"data": str(args.data), "model": str(args.model), "out": str(args.out)},
        "runs": {},
        "ndcg10": {},
    }

    def save() -> None:
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (args.out / "results.md").write_text(markdown(results, stages))
        if args.benchmarks is not None:
            write_section(args.benchmarks, results, stages)

    dataset, first = load_test(settings)
    ranked = candidates(first, stages[-1])
    scored: dict[str, dict[str, dict[str, float]]] = {}  # system -> run scored so far
    seconds: dict[str, float] = {}

    def score_stage(name: str, model: Path, stage: int) -> None:
        low = 0 if stage == stages[0] else stages[stages.index(stage) - 1]
        part = {qid: {d: first[qid][d] for d in docs[low:stage]} for qid, docs in ranked.items()}
        cache = args.out / "scores" / f"{name}@{stage}.json"  # a rerun of the script reuses it
        if cache.is_file() and json.loads(cache.read_text())["model"] == str(model):
            saved = json.loads(cache.read_text())
            run, stage_seconds = saved["run"], saved["seconds"]
        else:
            reranker = CrossEncoderReranker(
                str(model), max_length=args.max_length, dtype=args.dtype
            )
            run, timing = rerank_run(
                reranker, dataset, part, top_n=stage - low, desc=f"{name}@{stage}"
            )
            stage_seconds = timing.seconds
            cache.parent.mkdir(exist_ok=True)
            cache.write_text(
                json.dumps({"model": str(model), "seconds": stage_seconds, "run": run})
            )
        merged = scored.setdefault(name, {})
        for qid, docs in run.items():
            merged.setdefault(qid, {}).update(docs)
        seconds[name] = seconds.get(name, 0.0) + stage_seconds
        report = evaluate_runs(
            dataset,
            {"bm25": first, name: {q: dict(d) for q, d in merged.items()}},
            first_stage="bm25",
            top_n=stage,
        )
        results["ndcg10"].setdefault(name, {})[str(stage)] = report.system(name).metrics["nDCG@10"]
        results["ndcg10"]["bm25"] = {"100": report.system("bm25").metrics["nDCG@10"]}
        results.setdefault("scoring_seconds", {})[name] = round(seconds[name], 1)
        logger.info(
            "%s nDCG@10 at depth %d: %.4f", name, stage, results["ndcg10"][name][str(stage)]
        )
        save()
        if name != "before" and name in results["runs"]:
            record = results["runs"][name]["record"]
            before_run = {"before": scored["before"]} if "before" in scored else {}
            card_report = evaluate_runs(
                dataset,
                {"bm25": first, **before_run, "after": merged},
                first_stage="bm25",
                top_n=stage,
            )
            record["evaluation"] = evaluation_record(
                card_report, EvalSettings(**{**vars(settings), "top_n": stage})
            )
            write_record(Path(results["runs"][name]["output"]), record)

    models: dict[str, Path] = {"before": args.model}
    score_stage("before", args.model, stages[0])
    for loss in args.losses:
        output = args.out / f"minilm-scifact-{loss}"
        teacher: tuple[str, ...] = ()
        if loss == "marginmse":
            default = [
                f"cross-encoder:{args.out / 'minilm-scifact-bce'}?max_length={args.max_length}",
                "embedding:",
            ]
            teacher = tuple(args.teacher or default)
            results["teacher"] = list(teacher)
        triples = loss in ("margin", "marginmse")
        config = TrainConfig(
            model=str(args.model),
            data=str(args.data),
            output=str(output),
            loss=loss,
            ranks=tuple(args.ranks),
            negatives=args.negatives,
            max_queries=args.max_queries,
            sampling=args.sampling,
            teacher=teacher,
            max_steps=args.max_steps,
            batch_size=args.pairs_per_step // 2 if triples else args.pairs_per_step,
            learning_rate=args.learning_rate,
            max_length=args.max_length,
            seed=args.seed,
            save_steps=max(10, args.max_steps // 3),
            eval_split=None,  # evaluated below in stages, sharing "before"
            progress=False,
        )
        for stale in (args.out / "scores").glob(f"{loss}@*.json"):
            stale.unlink()  # scores of an earlier model trained into the same folder
        started = time.perf_counter()
        result = train(config, command=results["command"])
        results["runs"][loss] = {
            "output": str(output),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "training": result.record["training"],
            "data": result.record["data"],
            "record": result.record,
        }
        save()
        models[loss] = output
        score_stage(loss, output, stages[0])
    for stage in stages[1:]:
        for name, model in models.items():
            score_stage(name, model, stage)
    logger.info("done: %s", args.out / "results.md")
    return 0


def markdown(results: dict[str, Any], stages: list[int]) -> str:
    """The results table: nDCG@10 per depth reached, training steps, seconds (training alone;
    the whole run: mining, training, saving; scoring the test candidates at every depth)."""
    ndcg = results["ndcg10"]
    bm25 = ndcg.get("bm25", {}).get("100", float("nan"))
    lines = [
        "| system | "
        + " | ".join(f"nDCG@10 (BM25 top-{s} reranked)" for s in stages)
        + " | train steps | train s | run s (mine + train + save) | scoring s |",
        "|---|" + "---|" * len(stages) + "---|---|---|---|",
        "| BM25 alone | " + " | ".join(f"{bm25:.4f}" for _ in stages) + " | - | - | - | - |",
    ]
    for name, by_depth in ndcg.items():
        if name == "bm25":
            continue
        run = results["runs"].get(name, {})
        cells = " | ".join(f"{by_depth[str(s)]:.4f}" if str(s) in by_depth else "-" for s in stages)
        steps = run.get("training", {}).get("steps", "-")
        secs = run.get("training", {}).get("seconds", "-")
        wall = run.get("wall_seconds", "-")
        scoring = results.get("scoring_seconds", {}).get(name, "-")
        label = "before (starting model)" if name == "before" else f"after {name}"
        lines.append(f"| {label} | {cells} | {steps} | {secs} | {wall} | {scoring} |")
    return "\n".join(lines) + "\n"


START, END = "<!-- train_scifact: start -->", "<!-- train_scifact: end -->"


def write_section(path: Path, results: dict[str, Any], stages: list[int]) -> None:
    """Replace (or append) this script's section of BENCHMARKS.md, between its markers."""
    settings = results["settings"]
    here = str(ROOT) + "/"
    command = results["command"].replace(here, "")
    teachers = [t.replace(settings["out"], "OUT") for t in results.get("teacher", [])]
    bf16 = {run["training"].get("bf16") for run in results["runs"].values()}
    precision = "bf16 autocast" if bf16 == {True} else "fp32" if bf16 == {False} else "see runs"
    section = "\n".join(
        [
            START,
            "## Fine-tuning on SciFact (issue 15)",
            "",
            "`benchmarks/train_scifact.py`: the test cross-encoder "
            "(`../shared/models/minilm-l6-msmarco-ce`) fine-tuned with `rerankkit.train` on "
            f"SciFact train ({settings.get('max_queries') or 807} claims, "
            f"{settings['negatives']} BM25 negatives each from ranks "
            f"{settings['ranks'][0]}-{settings['ranks'][1]} ({settings.get('sampling', 'top')}), "
            "judged positives skipped), "
            f"{settings['max_steps']} steps of {settings['pairs_per_step']} pairs, "
            f"lr {settings['learning_rate']}, max_length {settings['max_length']}, {precision}; "
            "then SciFact test (300 claims) BM25 top-k reranked by each model, "
            f"scored with `dtype={settings['dtype']!r}`. `marginmse` teacher: "
            + ", ".join(f"`{t}`" for t in teachers or ["see results.json"])
            + " (z-scored sum per claim; `OUT` is `--out`).",
            "",
            markdown(results, stages),
            f"CPU: {results['cpu']} (when the run started). Seconds are wall time on the 2 "
            "cores; the nDCG figures do not depend on the load.",
            "",
            f"Command: `{command}`",
            END,
        ]
    )
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
