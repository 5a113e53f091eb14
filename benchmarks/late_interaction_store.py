"""What the token-embedding store buys: reranking the same candidates for several queries.

A RAG session asks follow-up questions over one retrieved set, and an evaluation reranks
overlapping candidate lists. Without a store every call re-encodes every document; with it only
the query is encoded after the first call. This script takes TREC DL 2019's BM25 top-k of one
query as the shared candidates, reranks them for ``--queries`` different DL19 queries one call at
a time (the RAG request pattern), with ``store=False`` and with the default in-memory store, in
interleaved rounds, and prints a markdown table (pairs/s, the speed-up, and memory per document).

    python benchmarks/late_interaction_store.py --out reports/late_interaction_store.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rerankkit import LateInteractionReranker, TokenEmbeddingStore
from rerankkit.eval import load_beir, load_trec_run

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def cpu_flags() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "Model name" in ln), "?"
    )
    flags = next((ln for ln in text.splitlines() if ln.startswith("Flags")), "")
    wanted = sorted(f for f in flags.split() if f.startswith(("avx512", "amx")) or f == "avx2")
    return f"{model}, {os.cpu_count()} logical CPUs, flags: {' '.join(wanted) or 'none'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "minilm-l6-colbert")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "trec-dl-2019-passage")
    parser.add_argument("--depth", type=int, default=100, help="shared candidates (default 100)")
    parser.add_argument("--queries", type=int, default=8, help="queries per round (default 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    dataset = load_beir(args.data)
    run = load_trec_run(args.data / "runs" / "bm25-top100.trec")
    qids = sorted(run)
    ranking = run[qids[0]]
    top = sorted(ranking, key=ranking.__getitem__, reverse=True)[: args.depth]
    documents = [dataset.corpus[d] for d in top]
    queries = [dataset.queries[q] for q in qids[: args.queries]]
    pairs = len(documents) * len(queries)

    plain = LateInteractionReranker(args.model, device="cpu", store=False)
    stored = LateInteractionReranker(args.model, device="cpu")
    half = LateInteractionReranker(
        args.model, device="cpu", store=TokenEmbeddingStore(dtype="float16")
    )
    for reranker in (stored, half):  # the first call fills the store: not part of the timing
        reranker.score(queries[0], documents)
    timings: dict[str, list[float]] = {"no store": [], "store (fp32)": [], "store (fp16)": []}
    for _ in range(args.rounds):
        for name, reranker in (
            ("no store", plain),
            ("store (fp32)", stored),
            ("store (fp16)", half),
        ):
            start = time.perf_counter()
            for query in queries:
                reranker.score(query, documents)
            timings[name].append(time.perf_counter() - start)

    tokens = sum(e.shape[0] for e in plain.encode_documents(documents)) / len(documents)
    lines = [
        "## Late interaction: the token-embedding store",
        "",
        f"CPU: {cpu_flags()}. Model {args.model.name}, {len(queries)} DL19 queries each "
        f"reranking the same {len(documents)} BM25 candidates one call at a time "
        f"({pairs} pairs a round), median of {args.rounds} interleaved rounds; the store was "
        "filled by one earlier call.",
        "",
        "| path | pairs/s | x no store |",
        "|---|---:|---:|",
    ]
    base = statistics.median(timings["no store"])
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        lines.append(f"| {name} | {pairs / median:,.0f} | {base / median:.1f} |")
    dim = stored.dimension
    lines += [
        "",
        f"Memory per document: {tokens:.0f} tokens on average x {dim} dims x 4 bytes = "
        f"{tokens * dim * 4 / 1024:.1f} KiB in float32, {tokens * dim * 2 / 1024:.1f} KiB in "
        "float16.",
        "",
        "Command: `python benchmarks/late_interaction_store.py`",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
