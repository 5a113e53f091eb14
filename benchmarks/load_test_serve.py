"""Bounded load test of ``rerankkit serve``: concurrent clients, with and without micro-batching.

For each mode, starts ``rerankkit serve SPEC`` on 127.0.0.1 (a subprocess, a free port), sends
``--requests`` Cohere v2 rerank requests from ``--clients`` concurrent clients (DL19 queries,
each with its BM25 top 20-50 passages, the same requests in every mode), checks every
response (status 200, each index exactly once: no lost or duplicated document), stops the
server and reports p50/p99 latency, requests/s and pairs/s. Then compares the two modes'
scores for the same requests.

    python benchmarks/load_test_serve.py                       # 128 requests, 16 clients
    python benchmarks/load_test_serve.py --requests 32 --clients 4   # a quick look

Loopback only, at most 500 requests per mode, every wait bounded: it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "trec-dl-2019-passage"
MODEL = ROOT.parent / "shared" / "models" / "minilm-l6-msmarco-ce"
MAX_REQUESTS = 500


@dataclass
class Outcome:
    mode: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost: int = 0
    pairs: int = 0
    model_calls: float = 0.0
    scores: dict[int, dict[int, float]] = field(default_factory=dict)


def load_requests(count: int, low: int, high: int, seed: int) -> list[tuple[str, list[str]]]:
    """``count`` (query, BM25 top-k passages) pairs, k drawn in [low, high], queries in turn."""
    from rerankkit.eval import load_beir, load_trec_run

    dataset = load_beir(DATA)
    run = load_trec_run(DATA / "runs" / "bm25-top100.trec")
    rng = random.Random(seed)
    query_ids = sorted(qid for qid in run if qid in dataset.queries)
    requests = []
    for i in range(count):
        qid = query_ids[i % len(query_ids)]
        ranked = sorted(run[qid], key=lambda doc: -run[qid][doc])
        depth = rng.randint(low, high)
        requests.append((dataset.queries[qid], [dataset.corpus[d] for d in ranked[:depth]]))
    return requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError("rerankkit serve exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"rerankkit serve did not answer /health in {timeout_s} s")
            try:
                if (await client.get(f"{url}/health", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def drive(
    url: str, requests: list[tuple[str, list[str]]], clients: int, mode: str
) -> Outcome:
    outcome = Outcome(mode=mode, seconds=0.0)
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        todo.put_nowait(i)
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        for query, documents in requests[:2]:  # warm-up (first-call costs), not measured
            await client.post(
                "/v2/rerank", json={"model": "m", "query": query, "documents": documents}
            )
        before = await model_calls(client)

        async def worker() -> None:
            while True:
                try:
                    i = todo.get_nowait()
                except asyncio.QueueEmpty:
                    return
                query, documents = requests[i]
                body = {"model": "m", "query": query, "documents": documents}
                start = time.perf_counter()
                try:
                    response = await client.post("/v2/rerank", json=body)
                except httpx.HTTPError as error:
                    outcome.errors.append(f"request {i}: {type(error).__name__}: {error}")
                    continue
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000.0)
                if response.status_code != 200:
                    outcome.errors.append(
                        f"request {i}: HTTP {response.status_code} {response.text[:200]}"
                    )
                    continue
                results = response.json()["results"]
                indices = sorted(r["index"] for r in results)
                if indices != list(range(len(documents))):
                    outcome.lost += len(set(range(len(documents))) - set(indices))
                    outcome.errors.append(f"request {i}: indices {indices[:10]}... not each once")
                outcome.pairs += len(documents)
                outcome.scores[i] = {r["index"]: r["relevance_score"] for r in results}

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        outcome.seconds = time.perf_counter() - start
        outcome.model_calls = await model_calls(client) - before
    return outcome


async def model_calls(client: httpx.AsyncClient) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "rerankkit_model_calls":
                return float(sample.value)
    return 0.0


def run_mode(
    spec: str,
    requests: list[tuple[str, list[str]]],
    clients: int,
    batching: bool,
    torch_threads: int | None,
) -> Outcome:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rerankkit", "serve", spec, "--port", str(port)]
    command += ["--max-queue", str(max(64, clients * 2))]
    if not batching:
        command.append("--no-batching")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if torch_threads is not None:
        env["OMP_NUM_THREADS"] = str(torch_threads)  # torch's intra-op threads in the server
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(command, env=env, stdout=log, stderr=log) as process,
    ):
        try:
            asyncio.run(wait_healthy(url, process, timeout_s=300))
            return asyncio.run(
                drive(url, requests, clients, "batching" if batching else "no batching")
            )
        finally:
            process.terminate()
            process.wait(60)
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace").strip()
            if tail:
                print(
                    f"--- server log ({'batching' if batching else 'no batching'}):\n{tail}",
                    file=sys.stderr,
                )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(outcomes: list[Outcome], requests: int, clients: int, spec: str) -> str:
    lines = [
        f"{requests} requests from {clients} concurrent clients, Cohere v2 `/v2/rerank`, `{spec}",
        "",
        "| mode | errors | lost documents | p50 latency (ms) | p99 latency (ms) | requests/s "
        "| pairs/s | model calls |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.mode} | {len(o.errors)} | {o.lost} | {percentile(o.latencies_ms, 50):.0f} | "
            f"{percentile(o.latencies_ms, 99):.0f} | {len(o.latencies_ms) / o.seconds:.2f} | "
            f"{o.pairs / o.seconds:.1f} | {o.model_calls:.0f} |"
        )
    if len(outcomes) == 2:
        a, b = outcomes
        speedup = (a.pairs / a.seconds) / (b.pairs / b.seconds)
        diffs = [
            abs(a.scores[i][d] - b.scores[i][d])
            for i in a.scores.keys() & b.scores.keys()
            for d in a.scores[i]
        ]
        same_top = sum(
            max(a.scores[i], key=lambda d: (a.scores[i][d], -d))
            == max(b.scores[i], key=lambda d: (b.scores[i][d], -d))
            for i in a.scores.keys() & b.scores.keys()
        )
        lines += [
            "",
            f"Same requests in both modes: max |score difference| {max(diffs, default=0.0):.1e}, "
            f"same top document in {same_top}/{len(a.scores.keys() & b.scores.keys())} requests; "
            f"throughput {a.mode} / {b.mode}: {speedup:.2f}x.",
        ]
    for o in outcomes:
        for error in o.errors[:5]:
            lines.append(f"- {o.mode}: {error}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", default=f"cross-encoder:{MODEL}", help="reranker spec to serve")
    parser.add_argument(
        "--requests", type=int, default=128, help=f"requests per mode (<= {MAX_REQUESTS})"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--min-docs", type=int, default=20)
    parser.add_argument("--max-docs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for the server (default: unset, torch picks one per core); 1 "
        "avoids OpenMP threads spinning against each other on a machine shared with other work",
    )
    parser.add_argument(
        "--modes", default="batching,no-batching", help="comma-separated: batching, no-batching"
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--requests must be in [1, {MAX_REQUESTS}]")
    requests = load_requests(args.requests, args.min_docs, args.max_docs, args.seed)
    outcomes = [
        run_mode(args.spec, requests, args.clients, mode == "batching", args.torch_threads)
        for mode in args.modes.split(",")
    ]
    spec = args.spec.replace(str(ROOT.parent), "..")
    threads = "unset" if args.torch_threads is None else args.torch_threads
    print(report(outcomes, args.requests, args.clients, f"{spec}` (OMP_NUM_THREADS {threads})"))
    return 1 if any(o.errors or o.lost for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
