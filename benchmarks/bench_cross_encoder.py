"""Speed and fidelity of CrossEncoderReranker's paths against sentence-transformers, in one process.

Every path scores the BM25 top-100 of the same TREC DL 2019 queries with the same weights. The
queries are split into rounds; in each round every path (in a rotated order) reranks that
round's queries one query at a time, so a burst of load from other processes on a shared
machine hits all paths alike. Speed is reported as the median over rounds of the per-round
ratio to sentence-transformers' default ``CrossEncoder.predict`` (with the range), plus pairs/s,
tokens/s and the fraction of this machine's measured float32 matmul rate, which is timed in
every round too. Fidelity (per-query Spearman and top-10 overlap against our exact float32
path, nDCG@10 with the official qrels) uses each path's scores of every query.

Cost model (the matmul bound): a BERT layer spends ``2 * (4 H^2 + 2 H I)`` FLOP per token in
its dense layers (Q, K, V, output projections and the two FFN matrices; 2 FLOP per
multiply-add) and ``4 H n`` in attention (scores and weighted sum over ``n`` tokens), so a pair
of ``n`` tokens costs ``L * n * (8 H^2 + 4 H I + 4 H n)`` FLOP; MiniLM-L6 (L=6, H=384, I=1536)
spends 21.2 MFLOP per token in its dense layers. Embeddings, softmax, LayerNorm and GELU are
not counted, so the bound is optimistic. Tokens are real tokens (padding excluded).

Besides throughput it measures the latency of one request (one query x 20/50/100 documents,
p50/p90 over the queries and rounds) and the cold start of a new process (import, load, first
1 x 20 result) with an empty and a warm conversion cache, with the process's peak RSS. Peers run
the same weights: FlashRank and fastembed's ``TextCrossEncoder`` get rerankkit's ONNX export
(float32; FlashRank also the int8 one), AnswerDotAI ``rerankers`` loads the folder with
transformers; a peer that is not installed is left out and named in the report.

The load average is read before and after every timed block; a run whose 1-minute load exceeded
the CPUs this process may use (plus 0.5) is labelled "loaded machine" in the report, and
``--require-quiet`` refuses to write ``--out`` from such a run (exit status 3).

Usage:
    python benchmarks/bench_cross_encoder.py --queries 8 --rounds 4 --require-quiet \\
        --out BENCHMARKS.md
    python benchmarks/bench_cross_encoder.py --quick        # 2 queries, 2 rounds: a smoke run

``--out`` rewrites everything above the marker comment of that file and keeps what is below.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "trec-dl-2019-passage"
DEFAULT_MODEL = SHARED / "models" / "minilm-l6-msmarco-ce"
MAX_LENGTH = 512
MARKER = "<!-- Sections below this line are written by other benchmark scripts"
ST = "sentence-transformers"
ST_FAST = "sentence-transformers bf16"
EXACT = "dtype=float32 (exact)"
EXACT_TRUE = "exact=True"
FLASHRANK, FLASHRANK_INT8 = "FlashRank fp32", "FlashRank int8"
FASTEMBED, RERANKERS = "fastembed TextCrossEncoder", "AnswerDotAI rerankers"
PEERS = {  # peer -> the module it needs
    FLASHRANK: "flashrank",
    FLASHRANK_INT8: "flashrank",
    FASTEMBED: "fastembed",
    RERANKERS: "rerankers",
}
LATENCY_SIZES = (20, 50, 100)

# Path name -> (code shown in the report, CrossEncoderReranker keyword arguments or None for ST).
PATHS: dict[str, tuple[str, dict[str, Any] | None]] = {
    ST: ("CrossEncoder(path, max_length=512).predict(pairs)", None),
    ST_FAST: (
        'CrossEncoder(path, max_length=512, model_kwargs={"dtype": torch.bfloat16}).predict(pairs)',
        None,
    ),
    "default": ("CrossEncoderReranker(path)", {}),
    EXACT_TRUE: ("CrossEncoderReranker(path, exact=True)", {"exact": True}),
    EXACT: ('CrossEncoderReranker(path, dtype="float32")', {"dtype": "float32"}),
    "openvino fp32 (exact)": (
        'CrossEncoderReranker(path, backend="openvino", dtype="float32")',
        {"backend": "openvino", "dtype": "float32"},
    ),
    "torch, auto": ('CrossEncoderReranker(path, backend="torch")', {"backend": "torch"}),
    "onnx, auto": ('CrossEncoderReranker(path, backend="onnx")', {"backend": "onnx"}),
    "onnx fp32 (exact)": (
        'CrossEncoderReranker(path, backend="onnx", dtype="float32")',
        {"backend": "onnx", "dtype": "float32"},
    ),
    "onnx int8": (
        'CrossEncoderReranker(path, backend="onnx", quantize="int8")',
        {"backend": "onnx", "quantize": "int8"},
    ),
    FLASHRANK: ("Ranker(<name>, cache_dir=<rerankkit's model.onnx>).rerank(request)", None),
    FLASHRANK_INT8: ("Ranker(<name>, cache_dir=<rerankkit's model.int8.onnx>)", None),
    FASTEMBED: ("TextCrossEncoder(<custom>, specific_model_path=<model.onnx>).rerank", None),
    RERANKERS: ('Reranker(path, model_type="cross-encoder", dtype=float32).rank', None),
}
DEFAULT_PATHS = [
    ST,
    ST_FAST,
    "default",
    EXACT_TRUE,
    EXACT,
    "onnx, auto",
    *PEERS,
]


# --------------------------------------------------------------------------- inputs


def build_inputs(data: Path, n_queries: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The first ``n_queries`` judged DL19 queries with their BM25 top-100 texts, and the qrels."""
    from rerankkit.eval import candidates, load_beir, load_trec_run

    logging.getLogger("rerankkit.eval._datasets").setLevel(logging.ERROR)
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
    return cases, dataset.qrels


def pair_lengths(model: Path, cases: list[dict[str, Any]]) -> list[list[int]]:
    """Real tokens of each pair after truncation to ``MAX_LENGTH`` (special tokens included)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    return [
        [
            len(ids)
            for ids in tokenizer(
                [c["query"]] * len(c["docs"]),
                c["docs"],
                truncation="only_second",
                max_length=MAX_LENGTH,
            )["input_ids"]
        ]
        for c in cases
    ]


def pair_flops(n: int, layers: int, hidden: int, intermediate: int) -> int:
    """Matmul FLOP of one pair of ``n`` tokens (see the module docstring for the formula)."""
    return layers * n * (8 * hidden * hidden + 4 * hidden * intermediate + 4 * hidden * n)


# --------------------------------------------------------------------------- paths


def peer_folder(model: Path, onnx_file: Path, name: str, file_name: str) -> Path:
    """A folder holding ``onnx_file`` as ``file_name`` beside the model's tokenizer and config
    files (symlinks), laid out as the peer expects its downloaded models."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bench-peer-")) / name
    folder.mkdir()
    for source in model.iterdir():
        if source.name == "tokenizer_config.json":
            # Both peers truncate at min(model_max_length, max_length) of this file (256 and
            # 128 for the test model); every other path reads MAX_LENGTH tokens, so they do too.
            config = json.loads(source.read_text(encoding="utf-8"))
            config.update(model_max_length=MAX_LENGTH, max_length=MAX_LENGTH)
            (folder / source.name).write_text(json.dumps(config), encoding="utf-8")
        elif source.suffix in {".json", ".txt", ".model"}:
            (folder / source.name).symlink_to(source.resolve())
    (folder / file_name).symlink_to(onnx_file.resolve())
    if not (folder / "special_tokens_map.json").exists():  # transformers 5 no longer writes it
        config = json.loads((model / "tokenizer_config.json").read_text(encoding="utf-8"))
        special = {k: v for k, v in config.items() if k.endswith("_token") and v}
        (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    return folder


def make_peer(name: str, model: Path) -> tuple[Callable[[str, list[str]], list[float]], str]:
    """A peer library running the same weights (see the module docstring)."""
    from rerankkit.backends._onnx import ensure_onnx_model

    if name in (FLASHRANK, FLASHRANK_INT8):
        from flashrank import Ranker, RerankRequest
        from flashrank.Config import model_file_map

        # A known model name whose file is not downloaded because the folder exists: the file
        # is rerankkit's export of this model (FlashRank reads any BERT-style ONNX classifier).
        known = "ms-marco-TinyBERT-L-2-v2" if name == FLASHRANK else "ms-marco-MiniLM-L-12-v2"
        onnx_file = ensure_onnx_model(model, quantize="int8" if name == FLASHRANK_INT8 else None)
        folder = peer_folder(model, onnx_file, known, model_file_map[known])
        ranker = Ranker(model_name=known, cache_dir=str(folder.parent), max_length=MAX_LENGTH)

        def flashrank_score(query: str, docs: list[str]) -> list[float]:
            passages = [{"id": i, "text": d} for i, d in enumerate(docs)]
            ranked = ranker.rerank(RerankRequest(query=query, passages=passages))
            by_id = {p["id"]: float(p["score"]) for p in ranked}
            return [by_id[i] for i in range(len(docs))]

        return flashrank_score, f"onnxruntime {'int8' if name == FLASHRANK_INT8 else 'float32'}"
    if name == FASTEMBED:
        from fastembed.common.model_description import ModelSource
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        folder = peer_folder(model, ensure_onnx_model(model), "fastembed-local", "model.onnx")
        TextCrossEncoder.add_custom_model(
            model="local/minilm-ce", model_file="model.onnx", sources=ModelSource(hf="x/y")
        )
        encoder = TextCrossEncoder("local/minilm-ce", specific_model_path=str(folder))

        def fastembed_score(query: str, docs: list[str]) -> list[float]:
            return [_sigmoid(s) for s in encoder.rerank(query, docs, batch_size=64)]

        return fastembed_score, "onnxruntime float32 (logits; sigmoid applied here)"
    import torch
    from rerankers import Reranker

    ranker = Reranker(
        str(model), model_type="cross-encoder", dtype=torch.float32, device="cpu", verbose=0
    )

    def rerankers_score(query: str, docs: list[str]) -> list[float]:
        ranked = ranker.rank(query, docs, doc_ids=list(range(len(docs))))
        by_id = {r.document.doc_id: _sigmoid(r.score) for r in ranked.results}
        return [by_id[i] for i in range(len(docs))]

    return rerankers_score, "torch float32 (logits; sigmoid applied here)"


def _sigmoid(logit: float) -> float:
    import math

    return 1.0 / (1.0 + math.exp(-float(logit)))


def make_scorer(name: str, model: Path) -> tuple[Callable[[str, list[str]], list[float]], str]:
    """A ``score(query, docs)`` function for path ``name`` and what it runs (for the report)."""
    _, kwargs = PATHS[name]
    if name in PEERS:
        return make_peer(name, model)
    if kwargs is None:
        import torch
        from sentence_transformers import CrossEncoder

        extra = {"model_kwargs": {"dtype": torch.bfloat16}} if name == ST_FAST else {}
        # max_length as ours, so both read the same tokens (the model's sentence-transformers
        # config would cut pairs at 128 tokens; DL19 passages run to ~250).
        encoder = CrossEncoder(str(model), max_length=MAX_LENGTH, local_files_only=True, **extra)

        def st_score(query: str, docs: list[str]) -> list[float]:
            pairs = [(query, d) for d in docs]
            return [float(s) for s in encoder.predict(pairs, show_progress_bar=False)]

        return st_score, "torch bfloat16" if name == ST_FAST else "torch float32"
    from rerankkit import CrossEncoderReranker

    reranker = CrossEncoderReranker(model, max_length=MAX_LENGTH, **kwargs)
    runs = reranker.cpu_path or f"{reranker.backend} {str(reranker.dtype).removeprefix('torch.')}"
    if kwargs.get("quantize"):
        runs = "onnx-int8 (explicit, not probed)"
    return reranker.score, runs


def matmul_gflops(dtype_name: str = "float32", repeats: int = 12) -> float:
    """torch matmul GFLOP/s on MiniLM's FFN shape ([4096, 384] x [384, 1536]) with this
    process's threads: the median of ``repeats`` timed products (on a shared machine the median
    sees the same contention as the paths timed around it)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(4096, 384, dtype=dtype)
    b = torch.randn(384, 1536, dtype=dtype)
    flop = 2 * 4096 * 384 * 1536
    torch.matmul(a, b)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        rates.append(flop / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


# --------------------------------------------------------------------------- fidelity


def fidelity(scores: dict[str, list[float]], reference: dict[str, list[float]]) -> dict[str, float]:
    """Mean and min Spearman per query, mean top-10 overlap, max |score difference|."""
    import numpy as np
    from scipy.stats import spearmanr

    rhos, overlaps, diffs = [], [], []
    for qid, ref in reference.items():
        got, ref_a = np.asarray(scores[qid]), np.asarray(ref)
        rhos.append(float(spearmanr(ref_a, got).statistic))
        top_ref = set(np.argsort(-ref_a, kind="stable")[:10].tolist())
        top_got = set(np.argsort(-got, kind="stable")[:10].tolist())
        overlaps.append(len(top_ref & top_got) / 10)
        diffs.append(float(np.max(np.abs(got - ref_a))))
    return {
        "spearman": statistics.fmean(rhos),
        "spearman_min": min(rhos),
        "top10": statistics.fmean(overlaps),
        "max_diff": max(diffs),
    }


def ndcg10(scores: dict[str, list[float]], cases: list[dict[str, Any]], qrels: Any) -> float:
    """Mean nDCG@10 of the reranked top-100 with the official qrels (ir-measures)."""
    from rerankkit.eval import per_query_metrics

    run = {c["qid"]: dict(zip(c["doc_ids"], scores[c["qid"]], strict=True)) for c in cases}
    values = per_query_metrics(qrels, run, {"nDCG@10": "nDCG@10"}, list(run))["nDCG@10"]
    return statistics.fmean(values.values())


# --------------------------------------------------------------------------- run


def run(
    model: Path, data: Path, n_queries: int, rounds: int, names: list[str], top: int = 100
) -> dict[str, Any]:
    """Load every path, then time them in interleaved rounds; everything the report needs."""
    from transformers import AutoConfig

    cases, qrels = build_inputs(data, n_queries)
    for case in cases:
        case["doc_ids"], case["docs"] = case["doc_ids"][:top], case["docs"][:top]
    lengths = pair_lengths(model, cases)
    config = AutoConfig.from_pretrained(model)
    shape = (config.num_hidden_layers, config.hidden_size, config.intermediate_size)
    flops = [sum(pair_flops(n, *shape) for n in row) for row in lengths]
    scorers, runs, load_s = {}, {}, {}
    for name in names:
        print(f"[bench] loading {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        scorers[name], runs[name] = make_scorer(name, model)
        load_s[name] = time.perf_counter() - t0
        scorers[name](cases[0]["query"], cases[0]["docs"][:32])  # warm-up (kernels, arenas)
    chunks = [list(range(len(cases)))[r::rounds] for r in range(rounds)]
    seconds: dict[str, list[float]] = {name: [] for name in names}
    gflops: list[float] = []
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    loads: list[float] = [os.getloadavg()[0]]
    latencies: dict[str, dict[int, list[float]]] = {
        name: {size: [] for size in LATENCY_SIZES} for name in names
    }
    for r, chunk in enumerate(chunks):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            gflops.append(matmul_gflops())
            t0 = time.perf_counter()
            for i in chunk:
                scores[name][cases[i]["qid"]] = scorers[name](cases[i]["query"], cases[i]["docs"])
            seconds[name].append(time.perf_counter() - t0)
            # One request: one query x 20/50/100 documents, each timed alone.
            for i in chunk:
                for size in LATENCY_SIZES:
                    t0 = time.perf_counter()
                    scorers[name](cases[i]["query"], cases[i]["docs"][:size])
                    latencies[name][size].append(time.perf_counter() - t0)
            loads.append(os.getloadavg()[0])
        print(f"[bench] round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    from rerankkit.backends._onnx import cache_entry_name, default_cache_dir, model_files_digest

    verdict_file = (
        default_cache_dir() / cache_entry_name(model_files_digest(model)) / "verdicts.json"
    )
    verdicts = json.loads(verdict_file.read_text()) if verdict_file.is_file() else {}
    choice_file = verdict_file.with_name("cpu_path_choices.json")
    choices = json.loads(choice_file.read_text()) if choice_file.is_file() else {}
    return {
        "cases": cases,
        "qrels": qrels,
        "lengths": lengths,
        "flops": flops,
        "chunks": chunks,
        "seconds": seconds,
        "gflops": gflops,
        "scores": scores,
        "runs": runs,
        "load_s": load_s,
        "verdicts": verdicts,
        "choices": choices,
        "shape": shape,
        "latencies": latencies,
        "loads": loads,
    }


COLD_START = """
import json, os, resource, sys, time
t0 = time.perf_counter()
name, model, query, docs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if name == "st":
    from sentence_transformers import CrossEncoder
    encoder = CrossEncoder(model, max_length=512, local_files_only=True)
    encoder.predict([(query, d) for d in docs], show_progress_bar=False)
else:
    from rerankkit import CrossEncoderReranker
    CrossEncoderReranker(model, max_length=512).score(query, docs)
seconds = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across fork + exec.
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) / 1024 if "VmHWM:" in status else (
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak}))
"""


def cold_starts(model: Path, case: dict[str, Any], repeats: int) -> dict[str, list[dict]]:
    """New process to the first 1 x 20 result (import, load, score), ``repeats`` times each:
    sentence-transformers, rerankkit's default with an empty conversion cache (a fresh
    folder each time: conversion, probe and timing included) and with a warm one."""
    import subprocess
    import tempfile

    results: dict[str, list[dict]] = {"sentence-transformers": [], "default, empty cache": []}
    results["default, warm cache"] = []
    warm = tempfile.mkdtemp(prefix="bench-warm-cache-")
    argv = [str(model), case["query"], json.dumps(case["docs"][:20])]
    for _ in range(repeats):
        for label, kind, cache in (
            ("sentence-transformers", "st", warm),
            ("default, empty cache", "rk", tempfile.mkdtemp(prefix="bench-empty-cache-")),
            ("default, warm cache", "rk", warm),  # warmed by the first empty-cache run too
        ):
            if label == "default, warm cache" and not any(Path(warm).rglob("*.onnx")):
                subprocess.run(
                    [sys.executable, "-c", COLD_START, "rk", *argv],
                    check=True,
                    env={**os.environ, "RERANKKIT_CACHE": warm},
                    capture_output=True,
                )  # fill the warm cache once, not timed
            done = subprocess.run(
                [sys.executable, "-c", COLD_START, kind, *argv],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "RERANKKIT_CACHE": cache},
            )
            results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, linear interpolation (numpy's default)."""
    import numpy as np

    return float(np.quantile(values, q))


def machine_is_loaded(loads: list[float]) -> bool:
    """Whether the 1-minute load average exceeded the CPUs this process may use (the
    benchmark alone keeps them busy) plus 0.5 at any reading."""
    from rerankkit.backends._speed import available_cpu_count

    return max(loads) > available_cpu_count() + 0.5


# --------------------------------------------------------------------------- report


def machine_lines() -> list[str]:
    import onnxruntime
    import sentence_transformers
    import torch
    import transformers

    from rerankkit.backends._speed import cpu_description, cpu_flags, speed_flags

    try:
        load = "load average {:.1f} / {:.1f} / {:.1f} (1/5/15 min) at the end".format(
            *os.getloadavg()
        )
    except OSError:
        load = "load average unknown"
    return [
        f"- CPU: {cpu_description()}; {load}",
        f"- CPU flags: {speed_flags(cpu_flags())}",
        f"- Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, sentence-transformers "
        f"{sentence_transformers.__version__}",
    ]


def rule_lines(verdicts: dict[str, Any], choices: dict[str, Any]) -> list[str]:
    from rerankkit.backends._fast_path import PROBE_MAX_ERROR, cpu_path_order
    from rerankkit.backends._speed import cpu_flags

    examples = {
        "this CPU": cpu_flags(),
        "AVX-512 BF16 (Zen 4, Sapphire Rapids, Cooper Lake)": frozenset({"avx2", "avx512_bf16"}),
        "AVX-512 VNNI, no bf16/AMX (Cascade Lake, Ice Lake)": frozenset({"avx2", "avx512_vnni"}),
        "AVX2 only (Haswell to Coffee Lake, Zen 1-3)": frozenset({"avx2"}),
    }
    lines = [
        "## How the default is chosen",
        "",
        '`CrossEncoderReranker(path)` on a CPU (`dtype=None`/`"auto"`) measures its candidate '
        "paths at first use and takes the fastest that keeps the ranking "
        "(`rerankkit/backends/_chooser.py`). The CPU flags and installed runtimes only prune the "
        "candidates (`_fast_path.cpu_path_order`): bf16 only where the CPU has native bf16 "
        "(emulated bf16 is always slower), ONNX Runtime int8 only without OpenVINO; the exact "
        "float32 paths (OpenVINO, ONNX Runtime, PyTorch) are always candidates, so the default "
        "is never slower than `exact=True` (within the noise of the measurement), and "
        "`exact=True` measures its own exact candidates the same way.",
        "",
        "A lossy candidate must first match float32 on 60 packaged probe pairs "
        "(`rerankkit/backends/probe_pairs.json`: 10 queries x 6 passages): the mean over queries "
        f"of RMS(fast - fp32) / std(fp32) must be <= {PROBE_MAX_ERROR} (on DL19 `1 - Spearman` "
        "grew like `0.5 * error^2`). Then every remaining candidate scores 30 of the probe pairs "
        "(26-107 tokens, length-sorted batches) once to warm up and three times timed, in "
        "rotated order; each candidate's best time counts, and a lossy path is taken only when "
        "it is 5% faster than the fastest exact one. The choice is cached beside the converted "
        "model, keyed by the weights, the runtimes' versions, the CPU model and flags, the "
        "thread count and the candidates; a later process builds the chosen path alone.",
        "",
        "| CPU | candidates (OpenVINO installed) | candidates (without OpenVINO) |",
        "|---|---|---|",
    ]
    for label, flags in examples.items():
        cells = [" -> ".join(cpu_path_order(flags, onnx=True, openvino=ov)) for ov in (True, False)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Choices measured for this model on this machine (from the cache):", ""]
    for v in choices.values():
        speeds = ", ".join(f"{p} {x:.0f}" for p, x in v["pairs_per_second"].items())
        lines.append(f"- `{v['path']}` (pairs/s on the timing pairs: {speeds})")
    lines += ["", "Probe verdicts for this model (from the cache):", ""]
    for key, v in sorted(verdicts.items()):
        error = "inf" if v["error"] is None else f"{v['error']:.4f}"
        lines.append(
            f"- `{v['path']}`: error {error} on {v['pairs']} pairs -> "
            f"{'passed' if v['passed'] else 'failed'} (`{key}`)"
        )
    return lines


def render(result: dict[str, Any], command: str, model: Path, note: str) -> str:
    cases, seconds, names = result["cases"], result["seconds"], list(result["seconds"])
    chunks, lengths, flops = result["chunks"], result["lengths"], result["flops"]
    pairs_per_round = [sum(len(cases[i]["docs"]) for i in chunk) for chunk in chunks]
    tokens_per_round = [sum(sum(lengths[i]) for i in chunk) for chunk in chunks]
    flops_per_round = [sum(flops[i] for i in chunk) for chunk in chunks]
    total_pairs, total_tokens = sum(pairs_per_round), sum(tokens_per_round)
    gflops = statistics.median(result["gflops"])
    layers, hidden, inter = result["shape"]
    dense_mflop = 2 * layers * (4 * hidden * hidden + 2 * hidden * inter) / 1e6
    mean_len = total_tokens / total_pairs
    reference = result["scores"].get(EXACT)
    lines = [
        "# Cross-encoder benchmarks",
        "",
        "Written by `benchmarks/bench_cross_encoder.py`. Reproduce with:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Model: `{model.name}` (MiniLM-L6 cross-encoder, 1 logit). Inputs: the BM25 "
        f"top-{len(cases[0]['docs'])} of "
        f"the first {len(cases)} judged TREC DL 2019 passage queries ({total_pairs} pairs, "
        f"{total_tokens:,} real tokens, {mean_len:.0f} per pair, max_length {MAX_LENGTH}), "
        f"one query ({len(cases[0]['docs'])} pairs) per call. One process; the queries are "
        "split into "
        f"{len(chunks)} rounds and every path scores each round's queries in turn (rotated "
        "order), so load from other processes hits all paths alike. `x ST` is the median over "
        "rounds of the per-round speed ratio to sentence-transformers' default `predict` "
        "(range in brackets).",
        "",
        "## Machine",
        "",
        *machine_lines(),
        f"- Measured torch float32 matmul rate ([4096, 384] x [384, 1536], measured before "
        f"every path in every round, {len(result['gflops'])} times): median {gflops:,.0f} "
        f"GFLOP/s (range {min(result['gflops']):,.0f}-{max(result['gflops']):,.0f}); the "
        "fraction of the bound is each path's useful FLOP/s over this median.",
        f"- Cost model: `L * n * (8 H^2 + 4 H I + 4 H n)` FLOP per pair of n tokens (L={layers}, "
        f"H={hidden}, I={inter}): {dense_mflop:.1f} MFLOP per token in the dense layers plus "
        f"attention; the float32 matmul bound for these inputs is "
        f"{gflops * 1e9 * total_tokens / sum(flops_per_round):,.0f} tokens/s.",
        f"- Load average (1 min) before the first and after every timed block: "
        f"{', '.join(f'{x:.1f}' for x in result['loads'])}"
        + (
            " -- **loaded machine**: other processes competed for the cores, so speeds "
            "and ratios are not quiet figures."
            if machine_is_loaded(result["loads"])
            else " (quiet: nothing but the benchmark ran)."
        ),
        f"- {note}",
        "",
        "## Speed and fidelity",
        "",
        "| path | runs | pairs/s | tokens/s | x ST (range) | fraction of fp32 matmul bound "
        "| Spearman mean (min) | top-10 overlap | max abs diff | nDCG@10 | load (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    st = seconds.get(ST)
    for name in names:
        total = sum(seconds[name])
        ratios = [s / t for s, t in zip(st, seconds[name], strict=True)] if st else []
        ratio = (
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            if ratios
            else "-"
        )
        fraction = sum(flops_per_round) / total / (gflops * 1e9)
        if reference is not None:
            f = fidelity(result["scores"][name], reference)
            fid = (
                f"{f['spearman']:.4f} ({f['spearman_min']:.4f}) | {f['top10']:.3f} "
                f"| {f['max_diff']:.2g}"
            )
        else:
            fid = "- | - | -"
        lines.append(
            f"| {name} | {result['runs'][name]} | {total_pairs / total:,.1f} "
            f"| {total_tokens / total:,.0f} | {ratio} | {fraction:.0%} | {fid} "
            f"| {ndcg10(result['scores'][name], cases, result['qrels']):.4f} "
            f"| {result['load_s'][name]:.1f} |"
        )
    lines += [
        "",
        "## Latency of one request",
        "",
        "One query x its first 20/50/100 BM25 documents per call, each call timed alone, over "
        f"the {len(cases)} queries and {len(chunks)} rounds (interleaved with the rows above); "
        "milliseconds.",
        "",
        "| path | " + " | ".join(f"1 x {n} p50 | 1 x {n} p90" for n in LATENCY_SIZES) + " |",
        "|---|" + "---:|" * (2 * len(LATENCY_SIZES)),
    ]
    for name in names:
        cells = []
        for size in LATENCY_SIZES:
            values = result["latencies"][name][size]
            cells += [
                f"{1000 * percentile(values, 0.5):.0f}",
                f"{1000 * percentile(values, 0.9):.0f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cold = result.get("cold")
    if cold:
        lines += [
            "",
            "## Cold start",
            "",
            "A new process to the first 1 x 20 result (import, model load, conversion, probe "
            "and timing where the cache is empty, scoring), and the process's peak RSS; "
            f"{len(next(iter(cold.values())))} runs each, min-max.",
            "",
            "| process | seconds | peak RSS (MiB) |",
            "|---|---:|---:|",
        ]
        for label, runs in cold.items():
            sec = [r["seconds"] for r in runs]
            rss = [r["peak_rss_mib"] for r in runs]
            lines.append(
                f"| {label} | {min(sec):.1f}-{max(sec):.1f} | {min(rss):.0f}-{max(rss):.0f} |"
            )
    if result.get("missing"):
        lines += ["", "Peers left out (not installed): " + ", ".join(result["missing"]) + "."]
    lines += ["", "Paths:", ""]
    lines += [f"- {name}: `{PATHS[name][0]}`" for name in names]
    lines += [
        "",
        "sentence-transformers' own ONNX and OpenVINO backends (`CrossEncoder(path, "
        'backend="onnx")`, `"openvino"`) need `optimum`; its current release (2.3.0) does not '
        "import with transformers 5 (`cannot import name 'get_parameter_dtype'`), so its "
        "fastest available backend here is torch with bf16 weights (the `sentence-transformers "
        "bf16` row). `load (s)` includes conversion and the fidelity probe only on a cold "
        "cache. No GPU was lent to this project for this measurement, so there are no GPU "
        "figures.",
        "",
        *rule_lines(result["verdicts"], result["choices"]),
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, report: str) -> None:
    """Replace everything above the marker comment of ``out``, keep the marker and below."""
    old = out.read_text(encoding="utf-8") if out.is_file() else ""
    at = old.find(MARKER)
    tail = old[at:] if at >= 0 else MARKER + " -->\n"
    out.write_text(report.rstrip("\n") + "\n\n" + tail, encoding="utf-8")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=8, help="first N judged queries")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument(
        "--top", type=int, default=100, help="BM25 documents per query (smoke runs: fewer)"
    )
    parser.add_argument("--quick", action="store_true", help="2 queries, 2 rounds: a smoke run")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=DEFAULT_PATHS)
    parser.add_argument("--note", default="", help="a line about the machine's state")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to update")
    parser.add_argument(
        "--cold-starts", type=int, default=3, help="cold-start runs per process kind (0: none)"
    )
    parser.add_argument(
        "--require-quiet",
        action="store_true",
        help="refuse to write --out when the load average shows other work (exit status 3)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    queries, rounds = (2, 2) if args.quick else (args.queries, args.rounds)
    from rerankkit.backends._speed import installed

    names = list(dict.fromkeys([ST, *args.paths, EXACT]))
    missing = [n for n in names if n in PEERS and not installed(PEERS[n])]
    names = [n for n in PATHS if n in names and n not in missing]
    result = run(args.model, args.data, queries, rounds, names, args.top)
    result["missing"] = missing
    if args.cold_starts:
        print("[bench] cold starts", file=sys.stderr, flush=True)
        result["cold"] = cold_starts(args.model, result["cases"][0], args.cold_starts)
        result["loads"].append(os.getloadavg()[0])
    command = "python benchmarks/bench_cross_encoder.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    note = args.note or "Machine state not recorded."
    report = render(result, command.strip(), args.model, note)
    print(report)
    if args.out and args.require_quiet and machine_is_loaded(result["loads"]):
        print(f"[bench] loaded machine: not writing {args.out}", file=sys.stderr)
        return 3
    if args.out:
        write_report(args.out, report)
        print(f"[bench] wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
