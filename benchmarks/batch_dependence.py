"""How much a CPU path's scores depend on which other pairs share the batch (issue 25.7).

A pair's score should be a function of the pair. Exact float32 kernels keep that up to float
rounding (~1e-6); low-precision ones (bf16, dynamic int8 with per-batch activation scales) can
give the same pair different scores in different batches, so a cached score may differ from a
fresh one and a ranking from a distributed run from an in-process one. This script scores the
BM25 top-N of the first DL19 queries with each path in four batch compositions:

- ``per query, batch 32``: ``score(query, docs)`` one query at a time (the reranker's default);
- ``all queries, batch 32``: one ``score_many`` call: pairs of all queries length-sorted into
  shared batches (what ``rerankkit eval`` does), so neighbours come from other queries;
- ``per query, batch 8`` and ``per query, batch 1``: smaller batches, other padding.

For each path it reports the largest and mean spread (max - min over the compositions) of a
pair's score, the number of pairs whose score is not identical in all compositions, and the
nDCG@10 (official qrels) of each composition. Paths that do not exist on this CPU are named as
such (OpenVINO's bf16 hint on a CPU without native bf16 runs float32).

Usage:
    python benchmarks/batch_dependence.py --queries 8 --top 100
    python benchmarks/batch_dependence.py --queries 2 --top 20      # smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cross_encoder import (
    DEFAULT_DATA,
    DEFAULT_MODEL,
    MAX_LENGTH,
    build_inputs,
    machine_lines,
    ndcg10,
)

# Path name -> CrossEncoderReranker keyword arguments.
PATHS: dict[str, dict[str, Any]] = {
    "exact=True": {"exact": True},
    'dtype="float32" (torch)': {"dtype": "float32"},
    'onnx int8 (quantize="int8")': {"backend": "onnx", "quantize": "int8"},
    'torch bf16 (dtype="bfloat16")': {"dtype": "bfloat16"},
    'openvino bf16 (backend="openvino", dtype="bfloat16")': {
        "backend": "openvino",
        "dtype": "bfloat16",
    },
}
COMPOSITIONS = ("per query, batch 32", "all queries, batch 32", "per query, batch 8", "batch 1")


def scores_by_composition(reranker: Any, cases: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Every pair's score (cases concatenated) in each batch composition."""
    out: dict[str, list[float]] = {}
    for composition in COMPOSITIONS:
        reranker.batch_size = {"per query, batch 8": 8, "batch 1": 1}.get(composition, 32)
        if composition.startswith("all queries"):
            groups = reranker.score_many([(c["query"], c["docs"]) for c in cases])
        else:
            groups = [reranker.score(c["query"], c["docs"]) for c in cases]
        out[composition] = [float(s) for group in groups for s in group]
    reranker.batch_size = 32
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--top", type=int, default=100)
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import numpy as np

    from rerankkit import CrossEncoderReranker

    cases, qrels = build_inputs(args.data, args.queries)
    for case in cases:
        case["doc_ids"], case["docs"] = case["doc_ids"][: args.top], case["docs"][: args.top]
    load_before = os.getloadavg()[0]
    rows = []
    for name in args.paths:
        print(f"[batch] {name}", file=sys.stderr, flush=True)
        reranker = CrossEncoderReranker(args.model, max_length=MAX_LENGTH, **PATHS[name])
        by = scores_by_composition(reranker, cases)
        matrix = np.asarray([by[c] for c in COMPOSITIONS])
        spread = matrix.max(axis=0) - matrix.min(axis=0)
        ndcgs = []
        for composition in COMPOSITIONS:
            flat = iter(by[composition])
            per_query = {c["qid"]: [next(flat) for _ in c["docs"]] for c in cases}
            ndcgs.append(ndcg10(per_query, cases, qrels))
        precision = "int8" if reranker.quantize else str(reranker.dtype).split(".")[-1]
        runs = reranker.cpu_path or f"{reranker.backend} {precision}"
        rows.append(
            f"| {name} | {runs} | {spread.max():.2g} | {spread.mean():.2g} "
            f"| {int((spread > 0).sum())} / {spread.size} | "
            + " | ".join(f"{x:.4f}" for x in ndcgs)
            + f" | {max(ndcgs) - min(ndcgs):.4f} |"
        )
    load_after = os.getloadavg()[0]
    pairs = sum(len(c["docs"]) for c in cases)
    lines = [
        "## Batch dependence of the CPU paths",
        "",
        f"`python benchmarks/batch_dependence.py --queries {args.queries} --top {args.top}`: "
        f"{pairs} pairs (BM25 top-{args.top} of the first {len(cases)} judged DL19 queries, "
        f"max_length {MAX_LENGTH}), each scored in {len(COMPOSITIONS)} batch compositions "
        f"({', '.join(COMPOSITIONS)}). Spread: max - min of one pair's sigmoid score over the "
        f"compositions. Load average (1 min) before/after: {load_before:.1f} / {load_after:.1f}.",
        "",
        *machine_lines(),
        "",
        "| path | runs | max spread | mean spread | pairs not identical | "
        + " | ".join(f"nDCG@10 {c}" for c in COMPOSITIONS)
        + " | nDCG@10 range |",
        "|---|---|---:|---:|---:|" + "---:|" * (len(COMPOSITIONS) + 1),
        *rows,
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
