"""OpenVINO int8 (NNCF post-training quantisation) of the test cross-encoder against float32.

Calibration uses what a first use could ship: the packaged probe pairs
(``rerankkit/backends/probe_pairs.json``, 60 pairs, one batch per probe query), never the
benchmark's DL19 queries. Each variant is judged by the probe (``_fast_path.probe_error``
against OpenVINO float32 on the probe pairs: optimistic, they were the calibration set) and,
honestly, on the first ``--queries`` DL19 queries x BM25 top-100 (per-query Spearman and top-10
overlap against float32), then timed against float32 on those pairs in the reranker's batching
(``padding_aware_batches``, at most 32 pairs, per query) in interleaved rounds. Variants:

- ``int8``: ``nncf.quantize(model_type=TRANSFORMER)`` (its default keeps softmax/layernorm
  and the attention products out of int8; SmoothQuant on).
- ``int8, FFN out fp32``: the same with each layer's FFN output projection kept in float32 via
  ``ignored_scope`` (the activations after GELU have the widest range; what ``_onnx.quantize_int8``
  keeps in float32 too).
- ``int8, FFN out + last layer fp32``: also the last encoder layer in float32.

It reports the quantisation's cost at first use (seconds, RSS growth). Bounded: a few minutes.

Usage:
    python benchmarks/int8_openvino.py --queries 8 --rounds 2 [--out int8.md]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_encoder import DEFAULT_DATA, DEFAULT_MODEL, build_inputs
from profile_exact_path import OVERHEAD, assembled_rows, batches_for, write_section


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def logits_of(compiled: Any, batches: list[dict]) -> np.ndarray:
    from rerankkit.backends._hf import relevance_logits

    request = compiled.create_infer_request()
    out = [np.array(request.infer(b)[compiled.outputs[0]], dtype=np.float64) for b in batches]
    return relevance_logits(np.concatenate(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import nncf
    import openvino as ov
    from scipy.stats import spearmanr

    from rerankkit import CrossEncoderReranker
    from rerankkit.backends._cpu_paths import _probe_batches
    from rerankkit.backends._fast_path import probe_error
    from rerankkit.backends._onnx import ensure_onnx_model
    from rerankkit.backends._speed import physical_core_count

    loads = [os.getloadavg()[0]]
    threads = physical_core_count()
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    reranker = CrossEncoderReranker(args.model, max_length=512, dtype="float32")
    onnx_path = ensure_onnx_model(args.model)
    probe, sizes = _probe_batches(reranker.tokenizer, 512)
    cases, _ = build_inputs(args.data, args.queries)
    calls = [assembled_rows(reranker, c["query"], c["docs"]) for c in cases]
    by_query = [batches_for(rows, types, 32, OVERHEAD) for rows, types in calls]
    core = ov.Core()
    fp32 = core.compile_model(str(onnx_path), "CPU", config)

    layers = reranker._forward.model.config.num_hidden_layers
    last = layers - 1
    ffn_out = [f"/model/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(layers)]
    last_layer = [f".*/layer\\.{last}/.*"]
    variants = {
        "int8": nncf.IgnoredScope(),
        "int8, FFN out fp32": nncf.IgnoredScope(names=ffn_out, validate=False),
        "int8, FFN out + last layer fp32": nncf.IgnoredScope(
            names=ffn_out, patterns=last_layer, validate=False
        ),
    }
    compiled: dict[str, Any] = {"openvino-float32": fp32}
    cost: dict[str, tuple[float, float]] = {}
    for name, ignored in variants.items():
        before = rss_mib()
        start = time.perf_counter()
        model = core.read_model(str(onnx_path))
        quantized = nncf.quantize(
            model,
            nncf.Dataset(probe),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(probe),
            ignored_scope=ignored,
        )
        compiled[name] = core.compile_model(quantized, "CPU", config)
        cost[name] = (time.perf_counter() - start, rss_mib() - before)
    loads.append(os.getloadavg()[0])

    reference_probe = logits_of(fp32, probe)
    reference = [logits_of(fp32, batches) for batches in by_query]
    rows = []
    for name in compiled:
        if name == "openvino-float32":
            continue
        error = probe_error(
            reference_probe.tolist(), logits_of(compiled[name], probe).tolist(), sizes
        )
        rhos, tops = [], []
        for q, batches in enumerate(by_query):
            ref, got = reference[q], logits_of(compiled[name], batches)
            # rows are in batch order for both: the same permutation, so the ranking compares
            rhos.append(spearmanr(ref, got).statistic)
            top_ref = set(np.argsort(-ref)[:10])
            tops.append(len(top_ref & set(np.argsort(-got)[:10])) / 10)
        rows.append((name, error, float(np.mean(rhos)), float(np.min(rhos)), float(np.mean(tops))))
    loads.append(os.getloadavg()[0])

    names = list(compiled)
    requests = {n: compiled[n].create_infer_request() for n in names}
    for n in names:
        requests[n].infer(by_query[0][0])
    rounds = max(1, min(args.rounds, len(cases)))
    chunks = [list(range(len(cases)))[r::rounds] for r in range(rounds)]
    seconds = {n: [0.0] * rounds for n in names}
    for r, chunk in enumerate(chunks):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            for q in chunk:
                for batch in by_query[q]:
                    requests[n].infer(batch)
            seconds[n][r] = time.perf_counter() - start
        loads.append(os.getloadavg()[0])
    pairs = {r: sum(len(cases[q]["docs"]) for q in chunks[r]) for r in range(rounds)}
    rate = {n: statistics.median(pairs[r] / seconds[n][r] for r in range(rounds)) for n in names}

    lines = [
        "## OpenVINO int8 (NNCF) vs float32 (issue 26)",
        "",
        f"`python benchmarks/int8_openvino.py {' '.join(argv or sys.argv[1:])}`",
        "",
        f"nncf {nncf.__version__}, openvino {ov.__version__}, {threads} threads; calibrated on "
        f"the {sum(sizes)} packaged probe pairs; judged on {len(cases)} DL19 queries x BM25 "
        "top-100 against OpenVINO float32. Probe bar 0.05 (`_fast_path.PROBE_MAX_ERROR`).",
        "",
        "| variant | probe error | Spearman mean (min) | top-10 | pairs/s | x float32 | "
        "first use: s, RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| openvino-float32 | 0 | 1 | 1 | {rate['openvino-float32']:.1f} | 1.00 | - |",
    ]
    for name, error, rho, rho_min, top in rows:
        seconds_used, grown = cost[name]
        lines.append(
            f"| {name} | {error:.4f} | {rho:.4f} ({rho_min:.4f}) | {top:.3f} | {rate[name]:.1f} | "
            f"{rate[name] / rate['openvino-float32']:.2f} | {seconds_used:.1f}, {grown:.0f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(
        f"\nPeak RSS of this process {peak:.0f} MiB. Load average (1 min) at each block: "
        + ", ".join(f"{x:.1f}" for x in loads)
        + (" -- **loaded machine**" if max(loads) > threads + 0.5 else " (quiet)")
    )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        write_section(args.out, "int8_openvino", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
