"""Speed and fidelity of CrossEncoderReranker's paths against sentence-transformers, in one run.

Every path (sentence-transformers ``CrossEncoder.predict``, and ``CrossEncoderReranker`` in
float32, bfloat16, ONNX float32, ONNX int8 and ``dtype="auto"``) scores the same inputs with the
same weights, each in its own subprocess so that its peak RSS is its own:

- throughput: the BM25 top-100 of every TREC DL 2019 query (pairs/s, tokens/s, ratio to ST);
- latency: p50/p95 of one 100-document rerank (each query) and one 20-document rerank;
- a long-document case: passages concatenated to documents past ``max_length`` (truncated);
- fidelity against the float32 path: Spearman per query (mean and min), top-10 overlap, and
  nDCG@10 of the reranked run (ranx) with the official qrels.

Usage:
    python benchmarks/bench_cross_encoder.py --out BENCHMARKS.md
    python benchmarks/bench_cross_encoder.py --quick          # 5 queries, a smoke run

Tokens/s counts real tokens (pairs after truncation to ``max_length``, padding excluded), so the
figure does not reward padding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "trec-dl-2019-passage"
DEFAULT_MODEL = SHARED / "models" / "minilm-l6-msmarco-ce"
MAX_LENGTH = 512
BATCH_SIZE = 32
REFERENCE = "fp32"
ST = "sentence-transformers"

# Path name -> CrossEncoderReranker keyword arguments (None: sentence-transformers).
PATHS: dict[str, dict[str, Any] | None] = {
    ST: None,
    "fp32": {"dtype": "float32"},
    "bf16": {"dtype": "bfloat16"},
    "onnx fp32": {"backend": "onnx"},
    "onnx int8": {"backend": "onnx", "quantize": "int8"},
    "auto": {"dtype": "auto"},
}
PATH_CODE = {
    ST: "CrossEncoder(path, max_length=512).predict(pairs, batch_size=32)",
    "fp32": 'CrossEncoderReranker(path, dtype="float32")',
    "bf16": 'CrossEncoderReranker(path, dtype="bfloat16")',
    "onnx fp32": 'CrossEncoderReranker(path, backend="onnx")',
    "onnx int8": 'CrossEncoderReranker(path, backend="onnx", quantize="int8")',
    "auto": 'CrossEncoderReranker(path, dtype="auto")',
}


# --------------------------------------------------------------------------- inputs


def build_inputs(data: Path, n_queries: int | None, long_queries: int) -> dict[str, Any]:
    """Queries, their BM25 top-100 texts, and the long-document case, as plain JSON."""
    from rerankkit.eval.datasets import load_beir, load_trec_run
    from rerankkit.eval.runs import candidates

    dataset = load_beir(data)
    top = candidates(load_trec_run(data / "runs" / "bm25-top100.trec"), 100)
    qids = [qid for qid in dataset.judged_query_ids if qid in top][:n_queries]
    cases = [
        {
            "qid": qid,
            "query": dataset.queries[qid],
            "doc_ids": top[qid],
            "docs": [dataset.corpus[d] for d in top[qid]],
        }
        for qid in qids
    ]
    # Long documents: 8 consecutive candidate passages joined (~600-900 tokens), so every pair
    # is cut at max_length; 10 per query.
    long_cases = [
        {
            "query": case["query"],
            "docs": [" ".join(case["docs"][i : i + 8]) for i in range(0, 80, 8)],
        }
        for case in cases[:long_queries]
    ]
    return {"cases": cases, "long": long_cases, "qrels": dataset.qrels}


def count_tokens(model: Path, inputs: dict[str, Any]) -> tuple[int, int, int]:
    """Real tokens of the top-100 pairs, the first-20 pairs and the long pairs (truncated)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)

    def tokens(query: str, docs: list[str]) -> list[int]:
        encoded = tokenizer(
            [query] * len(docs), docs, truncation="only_second", max_length=MAX_LENGTH
        )
        return [len(ids) for ids in encoded["input_ids"]]

    per_case = [tokens(c["query"], c["docs"]) for c in inputs["cases"]]
    long = sum(sum(tokens(c["query"], c["docs"])) for c in inputs["long"])
    return sum(map(sum, per_case)), sum(sum(t[:20]) for t in per_case), long


# --------------------------------------------------------------------------- one path (worker)


def run_worker(name: str, model: Path, inputs_file: Path, result_file: Path) -> None:
    """Load one path, warm it up, time it, and write scores and timings as JSON."""
    inputs = json.loads(inputs_file.read_text())
    kwargs = PATHS[name]
    started = time.perf_counter()
    info: dict[str, Any] = {}
    if kwargs is None:
        from sentence_transformers import CrossEncoder

        encoder = CrossEncoder(str(model), max_length=MAX_LENGTH, local_files_only=True)

        def score(query: str, docs: list[str]) -> list[float]:
            pairs = [(query, d) for d in docs]
            return encoder.predict(pairs, batch_size=BATCH_SIZE, show_progress_bar=False).tolist()
    else:
        from rerankkit import CrossEncoderReranker

        reranker = CrossEncoderReranker(
            model, max_length=MAX_LENGTH, batch_size=BATCH_SIZE, **kwargs
        )
        info["dtype"] = str(getattr(reranker, "dtype", "")).removeprefix("torch.")
        info["backend"] = getattr(reranker, "backend", "torch")

        def score(query: str, docs: list[str]) -> list[float]:
            return reranker.score(query, docs)

    load_s = time.perf_counter() - started
    import torch

    info["threads"] = torch.get_num_threads()
    cases = inputs["cases"]
    score(cases[0]["query"], cases[0]["docs"])  # warm-up: allocators, oneDNN kernels, ORT arenas
    scores, times100, times20 = {}, [], []
    for case in cases:
        t0 = time.perf_counter()
        scores[case["qid"]] = score(case["query"], case["docs"])
        times100.append(time.perf_counter() - t0)
    for case in cases:
        t0 = time.perf_counter()
        score(case["query"], case["docs"][:20])
        times20.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    long_pairs = 0
    for case in inputs["long"]:
        score(case["query"], case["docs"])
        long_pairs += len(case["docs"])
    long_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result_file.write_text(
        json.dumps(
            {
                "load_s": load_s,
                "scores": scores,
                "times100": times100,
                "times20": times20,
                "long_s": long_s,
                "long_pairs": long_pairs,
                "peak_rss_mb": peak_mb,
                **info,
            }
        )
    )


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank style percentile (``statistics.quantiles`` inclusive method)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q) - 1]


def fidelity(scores: dict[str, list[float]], reference: dict[str, list[float]]) -> dict[str, float]:
    """Mean and min Spearman per query, mean top-10 overlap, max |score difference|."""
    import numpy as np
    from scipy.stats import spearmanr

    rhos, overlaps, diffs = [], [], []
    for qid, ref in reference.items():
        got, ref_a = np.asarray(scores[qid]), np.asarray(ref)
        rhos.append(float(spearmanr(ref_a, got).statistic))
        top_ref = set(np.argsort(-ref_a, kind="stable")[:10])
        top_got = set(np.argsort(-got, kind="stable")[:10])
        overlaps.append(len(top_ref & top_got) / 10)
        diffs.append(float(np.max(np.abs(got - ref_a))))
    return {
        "spearman": statistics.fmean(rhos),
        "spearman_min": min(rhos),
        "top10": statistics.fmean(overlaps),
        "max_diff": max(diffs),
    }


def ndcg10(scores: dict[str, list[float]], inputs: dict[str, Any]) -> float:
    """nDCG@10 of the reranked top-100 with the official qrels (ranx)."""
    from ranx import Qrels, Run, evaluate

    run = {
        case["qid"]: dict(zip(case["doc_ids"], map(float, scores[case["qid"]]), strict=True))
        for case in inputs["cases"]
    }
    qrels = {qid: inputs["qrels"][qid] for qid in run}
    return float(evaluate(Qrels(qrels), Run(run), "ndcg@10"))


def machine() -> list[str]:
    import onnxruntime
    import sentence_transformers
    import torch
    import transformers

    from rerankkit.backends._speed import cpu_auto_dtype, cpu_description, cpu_flags

    flags = cpu_flags()
    native = sorted(flags & {"avx512_bf16", "amx_bf16", "avx512f", "avx2", "avx512_vnni"})
    return [
        f"- CPU: {cpu_description()}; relevant flags: {', '.join(native) or 'none'}",
        f"- dtype='auto' on this CPU: {cpu_auto_dtype(flags)}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}",
        f"- torch threads: {torch.get_num_threads()}",
    ]


def render(
    results: dict[str, dict[str, Any]],
    inputs: dict[str, Any],
    tokens: tuple[int, int, int],
    command: str,
    model: Path,
) -> str:
    n_cases = len(inputs["cases"])
    pairs = sum(len(c["docs"]) for c in inputs["cases"])
    total_tokens, _, long_tokens = tokens
    reference = results[REFERENCE]["scores"] if REFERENCE in results else None
    st_rate = (pairs / sum(results[ST]["times100"])) if ST in results else None

    lines = [
        "# Cross-encoder benchmarks",
        "",
        "Written by `benchmarks/bench_cross_encoder.py`. Reproduce with:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Model: `{model.name}` (MiniLM-L6 cross-encoder, 1 logit). Inputs: the BM25 top-100 of "
        f"{n_cases} TREC DL 2019 passage queries ({pairs} pairs, {total_tokens:,} tokens after "
        f"truncation to {MAX_LENGTH}), batch size {BATCH_SIZE}; every path runs in its own "
        "subprocess after one warm-up query.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Speed",
        "",
        "| path | pairs/s | tokens/s | x ST | 100 docs p50 / p95 (ms) | 20 docs p50 / p95 (ms) "
        "| long docs tokens/s | load (s) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        seconds = sum(r["times100"])
        rate = pairs / seconds
        ratio = f"{rate / st_rate:.2f}" if st_rate else "-"
        t100 = [1000 * t for t in r["times100"]]
        t20 = [1000 * t for t in r["times20"]]
        long_rate = f"{long_tokens / r['long_s']:,.0f}" if r["long_pairs"] else "-"
        lines.append(
            f"| {name} | {rate:,.1f} | {total_tokens / seconds:,.0f} | {ratio} "
            f"| {percentile(t100, 50):,.0f} / {percentile(t100, 95):,.0f} "
            f"| {percentile(t20, 50):,.0f} / {percentile(t20, 95):,.0f} "
            f"| {long_rate} | {r['load_s']:.1f} | {r['peak_rss_mb']:,.0f} |"
        )
    lines += [
        "",
        "## Ranking fidelity (against the float32 path) and quality",
        "",
        "| path | compute | Spearman mean (min) | top-10 overlap | max abs score diff | nDCG@10 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        compute = "torch float32" if name == ST else f"{r.get('backend')} {r.get('dtype')}"
        if name == "onnx int8":
            compute = "onnx int8 (dynamic)"
        elif name == "onnx fp32":
            compute = "onnx float32"
        if reference is not None:
            f = fidelity(r["scores"], reference)
            fid = (
                f"{f['spearman']:.4f} ({f['spearman_min']:.4f}) | {f['top10']:.3f} "
                f"| {f['max_diff']:.2g}"
            )
        else:
            fid = "- | - | -"
        lines.append(f"| {name} | {compute} | {fid} | {ndcg10(r['scores'], inputs):.4f} |")
    lines += ["", "Paths:", ""]
    lines += [f"- {name}: `{PATH_CODE[name]}`" for name in results]
    lines += [
        "",
        'Reading the tables: `dtype="auto"` is a dtype choice for the torch backend; on a CPU '
        "with native bf16 it is bf16, justified by the bf16 rows (speed against fp32, mean "
        'Spearman >= 0.99). `backend="onnx"` is the exact fast path (float32, same ranking); '
        '`quantize="int8"` is the fastest and only near-exact. Timings are wall-clock on the '
        "machine above; on a shared machine they are noisy, fidelity and nDCG are not.",
    ]
    lines += ["", *verdict(results, reference, st_rate, pairs), ""]
    return "\n".join(lines)


def verdict(
    results: dict[str, dict[str, Any]],
    reference: dict[str, list[float]] | None,
    st_rate: float | None,
    pairs: int,
) -> list[str]:
    """Which paths meet the issue's targets (computed, not written by hand)."""
    if reference is None or st_rate is None:
        return []
    out = ["## Targets", ""]
    for name, r in results.items():
        if name == ST:
            continue
        f = fidelity(r["scores"], reference)
        ratio = pairs / sum(r["times100"]) / st_rate
        keeps = f["spearman"] >= 0.99 and f["top10"] >= 0.95
        out.append(
            f"- {name}: {ratio:.2f}x ST, Spearman {f['spearman']:.4f}, top-10 {f['top10']:.3f}: "
            + ("meets" if ratio >= 4 and keeps else "does not meet")
            + " the >= 4x target with Spearman >= 0.99 and top-10 >= 0.95"
        )
    st_diff = fidelity(results[ST]["scores"], reference)["max_diff"]
    fp32_ratio = pairs / sum(results[REFERENCE]["times100"]) / st_rate
    out.append(
        f"- exact mode (fp32): max |score - ST| = {st_diff:.2g} (target 1e-4), "
        f"{fp32_ratio:.2f}x ST speed (target >= 1)"
    )
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="5 queries: a smoke run")
    parser.add_argument("--queries", type=int, default=None, help="first N queries (default all)")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--out", type=Path, default=None, help="write the report here (markdown)")
    parser.add_argument("--worker", choices=list(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    if args.worker:
        run_worker(args.worker, args.model, args.inputs, args.result)
        return 0

    n_queries = 5 if args.quick else args.queries
    inputs = build_inputs(args.data, n_queries, long_queries=2 if args.quick else 5)
    tokens = count_tokens(args.model, inputs)
    paths = list(
        dict.fromkeys([*([REFERENCE] if REFERENCE not in args.paths else []), *args.paths])
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = Path(tmp) / "inputs.json"
        inputs_file.write_text(json.dumps(inputs))
        for name in paths:
            result_file = Path(tmp) / "result.json"
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    name,
                    "--model",
                    str(args.model),
                    "--inputs",
                    str(inputs_file),
                    "--result",
                    str(result_file),
                ],
                check=True,
            )
            results[name] = json.loads(result_file.read_text())
    ordered = {name: results[name] for name in PATHS if name in results}
    command = "python benchmarks/bench_cross_encoder.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    report = render(ordered, inputs, tokens, command.strip(), args.model)
    if args.out:
        args.out.write_text(report)
        print(f"[bench] wrote {args.out}", file=sys.stderr)
    else:
        print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
