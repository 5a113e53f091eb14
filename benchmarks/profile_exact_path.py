"""Where the exact CPU path's time goes, and what other settings of the same path would give.

On the first ``--queries`` DL19 queries x their BM25 top-100 (the pairs of
``bench_cross_encoder.py``, max_length 512, one query per call as there), with the reranker's
exact path (``CrossEncoderReranker(model, max_length=512, exact=True)``, OpenVINO float32 where
it is installed) it measures:

1. **Stages** of ``reranker.score`` wall time: tokenisation (the two tokenizer calls the
   reranker makes), model execution (inside the runner; for OpenVINO also ``infer()`` alone,
   the rest of the runner being its input/output copies), and the remainder (cutting, pair
   assembly, padding, batching, activation: Python).
2. **Padding**: real tokens (attention mask) vs executed tokens (batch x padded width) for the
   reranker's batching (length-sorted, ``batch_size`` 32, per query) and for alternatives
   (other batch sizes, all queries batched together), plus the attention share that grows
   with the padded width.
3. **Operators**: OpenVINO's per-node profiling counters (``PERF_COUNT`` +
   ``get_profiling_info``) summed by operator type over the same batches: dense matmuls
   (FullyConnected), attention (MatMul/Softmax or a fused ScaledDotProductAttention),
   LayerNorm (MVN), GELU/eltwise, reorders, the rest.
4. **Settings**: the same padded batches run with other OpenVINO settings, interleaved rounds
   (rotated order, best round counts): the reranker's (``PERFORMANCE_HINT=LATENCY``, all cores,
   one synchronous request), one thread, two streams with each batch split in two length-sorted
   halves run concurrently, two streams pipelining a query's batches (``AsyncInferQueue``), and
   batch sizes 16 and 64.
5. **The bound**: torch float32 matmul GFLOP/s on MiniLM's FFN shape (``bench_cross_encoder.
   matmul_gflops``, timed in every round) and the path's matmul FLOP (``pair_flops``, real
   tokens) per second as a fraction of it.

The load average is read before and after each block; a run above the CPU count (+0.5) is
labelled "loaded machine". Bounded: about 4 minutes for 8 queries on a quiet 2-core CPU.

Usage:
    python benchmarks/profile_exact_path.py --queries 8 --rounds 2 [--out profile.md]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_encoder import (
    DEFAULT_DATA,
    DEFAULT_MODEL,
    MARKER,
    MAX_LENGTH,
    build_inputs,
    machine_is_loaded,
    machine_lines,
    matmul_gflops,
    pair_flops,
)

from rerankkit.backends._pairs import BATCH_OVERHEAD_TOKENS as OVERHEAD

# OpenVINO CPU node types -> the category the report shows.
CATEGORIES = {
    "FullyConnected": "dense matmul (Q/K/V/out, FFN)",
    "MatMul": "attention matmul (QK^T, AV)",
    "ScaledDotProductAttention": "attention (fused)",
    "Softmax": "softmax",
    "MVN": "layernorm (MVN)",
    "RMS": "layernorm (MVN)",
    "Eltwise": "eltwise (GELU, add, scale)",
    "Subgraph": "eltwise (GELU, add, scale)",
    "Reorder": "reorder / layout",
    "Transpose": "reorder / layout",
    "Reshape": "reorder / layout",
    "Gather": "embeddings / gather",
}


def batches_for(
    rows: list[list[int]], types: list[list[int]], batch_size: int, overhead: int | None = None
) -> list[dict]:
    """One call's rows in length-sorted padded batches: ``batch_size`` rows each (the
    reranker's batching before this profile) or, with ``overhead``, the reranker's
    ``padding_aware_batches`` with that per-batch cost."""
    from rerankkit.backends._hf import pad_batch
    from rerankkit.backends._pairs import length_sorted_batches, padding_aware_batches

    lengths = [len(r) for r in rows]
    plans = (
        length_sorted_batches(lengths, batch_size)
        if overhead is None
        else padding_aware_batches(lengths, batch_size, overhead)
    )
    out = []
    for plan in plans:
        ids, mask = pad_batch([rows[i] for i in plan], 0)
        batch = {"input_ids": ids, "attention_mask": mask}
        batch["token_type_ids"] = pad_batch([types[i] for i in plan], 0)[0]
        out.append(batch)
    return out


def assembled_rows(reranker: Any, query: str, docs: list[str]) -> tuple[list, list]:
    """The rows (ids, token types) the reranker builds for one call in truncate mode."""
    from rerankkit.backends._pairs import truncate_pair

    tok = reranker.tokenizer
    question = tok([query], add_special_tokens=False, verbose=False)["input_ids"][0]
    budget = reranker.max_length - reranker._template.num_special
    rows, types = [], []
    for ids in tok(docs, add_special_tokens=False, verbose=False)["input_ids"]:
        q, d, _ = truncate_pair(question, ids, budget)
        row, row_types = reranker._template.assemble(q, d)
        rows.append(row)
        types.append(row_types)
    return rows, types


def padding_table(calls: list[tuple[list, list]], model_shape: tuple[int, int, int]) -> list:
    """Executed vs real tokens and matmul FLOP for several batchings of the same rows."""
    layers, hidden, inter = model_shape

    def cost(batches: list[dict]) -> tuple[int, int, int, int]:
        real = executed = flop_real = flop_exec = 0
        for b in batches:
            n, width = b["input_ids"].shape
            lengths = b["attention_mask"].sum(axis=1)
            real += int(lengths.sum())
            executed += n * width
            flop_real += sum(pair_flops(int(x), layers, hidden, inter) for x in lengths)
            flop_exec += n * pair_flops(width, layers, hidden, inter)
        return real, executed, flop_real, flop_exec

    table = []
    for label, size, overhead, together in (
        ("per query, fixed 32 rows (the reranker before)", 32, None, False),
        ("per query, fixed 16 rows", 16, None, False),
        ("per query, fixed 64 rows", 64, None, False),
        ("per query, fixed 8 rows", 8, None, False),
        ("all queries in one call, fixed 32 rows", 32, None, True),
        (
            f"per query, padding-aware <= 32 rows, overhead {OVERHEAD} (the reranker now)",
            32,
            OVERHEAD,
            False,
        ),
        ("per query, padding-aware <= 32 rows, overhead 64", 32, 64, False),
        ("per query, padding-aware <= 32 rows, overhead 1024", 32, 1024, False),
    ):
        if together:
            rows = [r for c in calls for r in c[0]]
            types = [t for c in calls for t in c[1]]
            batches = batches_for(rows, types, size, overhead)
        else:
            batches = [b for rows, types in calls for b in batches_for(rows, types, size, overhead)]
        real, executed, flop_real, flop_exec = cost(batches)
        table.append((label, len(batches), real, executed, flop_real, flop_exec))
    return table


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` between ``<!-- name: start -->`` and ``<!-- name: end -->`` in ``path``
    (replacing what was there), or append it below the benchmark marker; another file is
    written whole."""
    start, end = f"<!-- {name}: start -->", f"<!-- {name}: end -->"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in current and end in current:
        head, _, rest = current.partition(start)
        current = head + block + rest.partition(end)[2]
    elif MARKER in current:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    else:
        current = text
    path.write_text(current, encoding="utf-8")


class Timed:
    """A runner wrapper that records the seconds spent inside it and the batch shapes."""

    def __init__(self, runner: Callable[[dict], np.ndarray]) -> None:
        self.runner = runner
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, batch: dict) -> np.ndarray:
        start = time.perf_counter()
        out = self.runner(batch)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def stages(reranker: Any, cases: list[dict]) -> dict[str, float]:
    """Wall time of ``reranker.score`` per query split into tokenisation, runner, rest."""
    tok = reranker.tokenizer
    timed = Timed(reranker._forward)
    original = reranker._forward
    reranker._forward = timed
    try:
        wall = tokenise = 0.0
        for case in cases:
            start = time.perf_counter()
            reranker.score(case["query"], case["docs"])
            wall += time.perf_counter() - start
            start = time.perf_counter()  # the reranker's two tokenizer calls, again
            tok([case["query"]], add_special_tokens=False, verbose=False)
            tok(case["docs"], add_special_tokens=False, verbose=False)
            tokenise += time.perf_counter() - start
    finally:
        reranker._forward = original
    return {"wall": wall, "tokenise": tokenise, "runner": timed.seconds, "calls": timed.calls}


def compile_variant(path: Path, config: dict[str, Any]) -> Any:
    import openvino as ov

    return ov.Core().compile_model(str(path), "CPU", config)


def run_sync(compiled: Any) -> Callable[[list[dict]], None]:
    request = compiled.create_infer_request()

    def run(batches: list[dict]) -> None:
        for batch in batches:
            request.infer(batch)
            np.array(request.get_output_tensor(0).data)

    return run


def run_split(compiled: Any) -> Callable[[list[dict]], None]:
    """Each batch as two halves (length-sorted rows: each half re-trimmed to its own longest
    row) on two requests at once (two streams)."""
    requests = [compiled.create_infer_request() for _ in range(2)]

    def halves(batch: dict) -> list[dict]:
        n = len(batch["input_ids"])
        if n < 2:
            return [batch]
        out = []
        for part in (slice(0, n // 2), slice(n // 2, n)):
            width = int(batch["attention_mask"][part].sum(axis=1).max())
            out.append({k: np.ascontiguousarray(v[part, :width]) for k, v in batch.items()})
        return out

    prepared: dict[int, list[dict]] = {}

    def run(batches: list[dict]) -> None:
        for batch in batches:
            parts = prepared.setdefault(id(batch), halves(batch))
            for request, part in zip(requests, parts, strict=False):
                request.start_async(part)
            for request, _ in zip(requests, parts, strict=False):
                request.wait()
                np.array(request.get_output_tensor(0).data)

    return run


def run_pipelined(compiled: Any) -> Callable[[list[dict]], None]:
    """A call's batches in flight on two requests at once (two streams)."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, 2)
    queue.set_callback(lambda request, _: np.array(request.get_output_tensor(0).data))

    def run(batches: list[dict]) -> None:
        for batch in batches:
            queue.start_async(batch)
        queue.wait_all()

    return run


def operator_profile(path: Path, batches: list[dict], threads: int) -> dict[str, float]:
    """Seconds per operator category over ``batches`` (OpenVINO's per-node counters)."""
    compiled = compile_variant(
        path,
        {
            "PERF_COUNT": True,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
        },
    )
    request = compiled.create_infer_request()
    request.infer(batches[0])  # warm-up
    seconds: dict[str, float] = collections.Counter()
    node_types: dict[str, float] = collections.Counter()
    for batch in batches:
        request.infer(batch)
        for info in request.get_profiling_info():
            if info.status.name != "EXECUTED":
                continue
            value = info.real_time.total_seconds()
            node_types[f"{info.node_type} ({info.exec_type})"] += value
            seconds[CATEGORIES.get(info.node_type, f"other ({info.node_type})")] += value
    return {"categories": dict(seconds), "node_types": dict(node_types)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of settings")
    parser.add_argument("--top", type=int, default=100)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="BENCHMARKS.md (its profile section is replaced) or another file (written whole)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from rerankkit import CrossEncoderReranker
    from rerankkit.backends._onnx import ensure_onnx_model
    from rerankkit.backends._speed import physical_core_count

    loads = [os.getloadavg()[0]]
    cases, _ = build_inputs(args.data, args.queries)
    for case in cases:
        case["docs"] = case["docs"][: args.top]
    reranker = CrossEncoderReranker(args.model, max_length=MAX_LENGTH, exact=True)
    config = reranker.model.config if reranker.model is not None else None
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(args.model)
    shape = (config.num_hidden_layers, config.hidden_size, config.intermediate_size)
    threads = physical_core_count()
    lines = [
        "## Profile of the exact CPU path (issue 26)",
        "",
        f"`python benchmarks/profile_exact_path.py {' '.join(argv or sys.argv[1:])}`".replace(
            " `", "`"
        ),
        "",
        *machine_lines(),
        f"- path: {reranker.cpu_path} (exact=True), batch_size {reranker.batch_size}, "
        f"{threads} inference threads; first {len(cases)} DL19 queries x BM25 top-{args.top}; "
        f"the reranker's batching: padding-aware, overhead {OVERHEAD} tokens",
    ]

    # 1. stages (one warm-up query first: first-call allocations)
    reranker.score(cases[0]["query"], cases[0]["docs"][:32])
    split = stages(reranker, cases)
    pairs = sum(len(c["docs"]) for c in cases)
    calls = [assembled_rows(reranker, c["query"], c["docs"]) for c in cases]
    per_query = [b for rows, types in calls for b in batches_for(rows, types, 32, OVERHEAD)]
    onnx_path = ensure_onnx_model(args.model)
    infer_only = 0.0
    if reranker.cpu_path and reranker.cpu_path.startswith("openvino"):
        request = reranker._forward.request
        for batch in per_query:
            start = time.perf_counter()
            request.infer(batch)
            infer_only += time.perf_counter() - start
    loads.append(os.getloadavg()[0])
    rest = split["wall"] - split["tokenise"] - split["runner"]
    wall = split["wall"]
    lines += [
        "",
        f"### 1. Stages of `reranker.score` ({pairs} pairs, {len(cases)} calls, "
        f"{split['calls']} runner calls): {wall:.2f} s, {pairs / wall:.1f} pairs/s",
        "",
        "| stage | seconds | share |",
        "|---|---:|---:|",
        f"| tokenisation (2 tokenizer calls per query) | {split['tokenise']:.3f} | "
        f"{split['tokenise'] / wall:.1%} |",
        f"| model execution (inside the runner) | {split['runner']:.3f} | "
        f"{split['runner'] / wall:.1%} |",
    ]
    if infer_only:
        copies = split["runner"] - infer_only
        lines.append(
            f"| - of which `infer()` alone (same batches, run again) | {infer_only:.3f} | "
            f"{infer_only / wall:.1%} |"
        )
        lines.append(
            f"| - of which the runner's copies + lock (difference) | {copies:.3f} | "
            f"{copies / wall:.1%} |"
        )
    lines.append(
        f"| rest: cutting, assembly, padding, batching, activation (Python) | {rest:.3f} | "
        f"{rest / wall:.1%} |"
    )

    # 2. padding
    lines += [
        "",
        "### 2. Padding (real tokens = attention mask; executed = batch x padded width)",
        "",
        "| batching | batches | real tokens | executed tokens | padding | matmul FLOP "
        "executed / real |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, n, real, executed, flop_real, flop_exec in padding_table(calls, shape):
        lines.append(
            f"| {label} | {n} | {real:,} | {executed:,} | {1 - real / executed:.1%} | "
            f"{flop_exec / flop_real:.3f} |"
        )
    flop_real = sum(
        pair_flops(int(x), *shape) for b in per_query for x in b["attention_mask"].sum(axis=1)
    )
    attention = sum(
        len(b["input_ids"]) * shape[0] * 4 * shape[1] * b["input_ids"].shape[1] ** 2
        for b in per_query
    )
    dense = sum(
        b["input_ids"].size * shape[0] * (8 * shape[1] ** 2 + 4 * shape[1] * shape[2])
        for b in per_query
    )
    lines.append(
        f"\nAttention matmuls are {attention / (attention + dense):.1%} of the executed matmul "
        f"FLOP at these widths (dense layers the rest)."
    )

    # 3. operators
    profile = operator_profile(onnx_path, per_query, threads)
    total = sum(profile["categories"].values())
    lines += [
        "",
        f"### 3. OpenVINO per-operator time (PERF_COUNT, {len(per_query)} batches, "
        f"{total:.2f} s summed over nodes)",
        "",
        "| operator category | seconds | share |",
        "|---|---:|---:|",
    ]
    for name, value in sorted(profile["categories"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {value:.3f} | {value / total:.1%} |")
    top = sorted(profile["node_types"].items(), key=lambda kv: -kv[1])[:8]
    lines.append(
        "\nTop node types (type, kernel): " + "; ".join(f"{k} {v / total:.1%}" for k, v in top)
    )
    loads.append(os.getloadavg()[0])

    # 4. settings A/B, interleaved, + 5. the bound
    base = {"INFERENCE_PRECISION_HINT": "f32"}
    latency = {**base, "PERFORMANCE_HINT": "LATENCY"}
    streams = {**base, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2}
    fixed = [batches_for(rows, types, 32) for rows, types in calls]
    aware = [batches_for(rows, types, 32, OVERHEAD) for rows, types in calls]
    sync = run_sync(compile_variant(onnx_path, {**latency, "INFERENCE_NUM_THREADS": threads}))
    two_streams = compile_variant(onnx_path, {**streams, "INFERENCE_NUM_THREADS": threads})
    now = f"padding-aware (overhead {OVERHEAD})"
    variants: dict[str, tuple[Callable[[list[dict]], None], list[list[dict]]]] = {
        f"LATENCY, {threads} threads, sync, fixed 32 rows (the reranker before)": (sync, fixed),
        f"LATENCY, {threads} threads, sync, {now} (the reranker now)": (sync, aware),
        "LATENCY, sync, fixed 16 rows": (
            sync,
            [batches_for(rows, types, 16) for rows, types in calls],
        ),
        "LATENCY, sync, padding-aware (overhead 64)": (
            sync,
            [batches_for(rows, types, 32, 64) for rows, types in calls],
        ),
        "LATENCY, sync, padding-aware (overhead 1024)": (
            sync,
            [batches_for(rows, types, 32, 1024) for rows, types in calls],
        ),
        f"LATENCY, 1 thread, sync, {now}": (
            run_sync(compile_variant(onnx_path, {**latency, "INFERENCE_NUM_THREADS": 1})),
            aware,
        ),
        f"2 streams, each batch split in two halves, {now}": (run_split(two_streams), aware),
        f"2 streams, a query's batches pipelined, {now}": (run_pipelined(two_streams), aware),
    }
    names = list(variants)
    for name in names:  # warm-up: shapes, kernels
        run, work = variants[name]
        run(work[0][:1])
    rounds = max(1, min(args.rounds, len(cases)))
    chunks = [list(range(len(cases)))[r::rounds] for r in range(rounds)]
    seconds = {name: [0.0] * rounds for name in names}
    gflops = []
    torch.set_num_threads(threads)
    for r, chunk in enumerate(chunks):
        gflops.append(matmul_gflops())
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run, work = variants[name]
            start = time.perf_counter()
            for q in chunk:
                run(work[q])
            seconds[name][r] = time.perf_counter() - start
        loads.append(os.getloadavg()[0])
    bound = statistics.median(gflops)
    total_pairs = {r: sum(len(cases[q]["docs"]) for q in chunks[r]) for r in range(rounds)}
    flop_per_round = {
        r: sum(pair_flops(len(row), *shape) for q in chunks[r] for row in calls[q][0])
        for r in range(rounds)
    }
    lines += [
        "",
        "### 4. Settings of the same path (model execution only, interleaved rounds, "
        "median over rounds)",
        "",
        f"Bound: torch float32 matmul on MiniLM's FFN shape, median {bound:.0f} GFLOP/s "
        f"({', '.join(f'{g:.0f}' for g in gflops)} per round), {threads} threads. The share is "
        "the real tokens' matmul FLOP (`pair_flops`, padding excluded) per second over it.",
        "",
        "| setting | pairs/s | vs the reranker's | share of the fp32 matmul bound |",
        "|---|---:|---:|---:|",
    ]
    rates = {
        name: statistics.median(total_pairs[r] / seconds[name][r] for r in range(rounds))
        for name in names
    }
    for name in names:
        share = statistics.median(
            flop_per_round[r] / seconds[name][r] / 1e9 / bound for r in range(rounds)
        )
        lines.append(
            f"| {name} | {rates[name]:.1f} | {rates[name] / rates[names[0]]:.2f}x | {share:.0%} |"
        )
    end_to_end = flop_real / split["wall"] / 1e9 / bound
    lines.append(
        f"\nEnd to end (`reranker.score`, section 1) the path ran at {end_to_end:.0%} of the bound."
    )
    loads.append(os.getloadavg()[0])
    loaded = machine_is_loaded(loads)
    lines.append(
        f"\nLoad average (1 min) at each block: {', '.join(f'{x:.1f}' for x in loads)}"
        + (
            " -- **loaded machine**: other work ran; shares are not quiet figures."
            if loaded
            else " (quiet: the profile alone)."
        )
    )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        write_section(args.out, "profile_exact_path", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
