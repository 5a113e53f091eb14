"""Bounded load test of ``rerankkit serve``: concurrent clients, with and without micro-batching.

For each mode, starts ``rerankkit serve SPEC`` on 127.0.0.1 (a subprocess, a free port), sends
``--requests`` Cohere v2 rerank requests from ``--clients`` concurrent clients (DL19 queries,
each with its BM25 top 20-50 passages, the same requests in every mode), checks every
response (status 200, each index exactly once: no lost or duplicated document), stops the
server and reports p50/p99 latency, requests/s and pairs/s. Then compares the two modes'
scores for the same requests.

    python benchmarks/load_test_serve.py                       # 128 requests, 16 clients
    python benchmarks/load_test_serve.py --requests 32 --clients 4   # a quick look

Overload (issue 24): ``--overload`` drives closed-loop clients at concurrency 1/8/32/128 for
``--seconds`` each, with 20- and 100-document requests, a fresh server per cell (so work
abandoned in one cell cannot slow the next), and reports per cell: answered requests/s and
pairs/s, p50/p95/p99 of the answered (200) requests, the refusals (503, 504), the client
timeouts (the client gives up and disconnects), and pairs per CPU-second of the server
process (its user+system time; the machine may be shared). ``--tree PATH`` serves another
checkout (``main``) for the "before" column: the server runs with that tree as its working
directory and on PYTHONPATH (``python -m`` puts the working directory first on ``sys.path``);
``--serve-args`` adds server options. ``--burst`` reports the server's RSS around bursts of 16
concurrent bodies of 1.9 MB and 50 MB.

    python benchmarks/load_test_serve.py --overload --tree ../main          # before
    python benchmarks/load_test_serve.py --overload --serve-args "--request-timeout-s 5"

Loopback only, at most 500 requests per mode, every wait bounded: it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    command = [sys.executable, "-m", "rerankkit", "serve", "--reranker", spec, "--port", str(port)]
    command += ["--max-queue", str(max(64, clients * 2))]
    if not batching:
        command.append("--no-batching")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if torch_threads is not None:
        env["OMP_NUM_THREADS"] = str(torch_threads)  # torch's intra-op threads in the server
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT) as process,
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


@dataclass
class Cell:
    docs: int
    clients: int
    seconds: float = 0.0
    ok_ms: list[float] = field(default_factory=list)
    pairs: int = 0
    refused: int = 0  # 503
    deadline: int = 0  # 504
    client_timeouts: int = 0
    other: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    retry_after: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def closed_loop(
    url: str, requests: list[tuple[str, list[str]]], cell: Cell, seconds: float, timeout: float
) -> None:
    """``cell.clients`` clients, each sending its next request when the last one is answered
    (or refused: after Retry-After, at most 1 s), for ``seconds``; then waits for the answers
    still due (each bounded by ``timeout``)."""
    limits = httpx.Limits(max_connections=cell.clients + 2)
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def one(worker: int) -> None:
            i = worker
            while time.monotonic() < stop:
                query, documents = requests[i % len(requests)]
                i += cell.clients
                body = {"model": "m", "query": query, "documents": documents}
                start = time.perf_counter()
                try:
                    response = await client.post("/v2/rerank", json=body)
                except httpx.TimeoutException:
                    cell.client_timeouts += 1
                    continue
                except httpx.HTTPError as error:
                    cell.other.append(f"{type(error).__name__}: {error}")
                    await asyncio.sleep(0.1)
                    continue
                elapsed = (time.perf_counter() - start) * 1000.0
                if response.status_code == 200:
                    assert len(response.json()["results"]) == len(documents)
                    cell.ok_ms.append(elapsed)
                    cell.pairs += len(documents)
                elif response.status_code == 503:
                    cell.refused += 1
                    wait = float(response.headers.get("retry-after", "1"))
                    cell.retry_after.append(wait)
                    await asyncio.sleep(min(wait, 1.0))
                elif response.status_code == 504:
                    cell.deadline += 1
                else:
                    cell.other.append(f"HTTP {response.status_code} {response.text[:100]}")

        begin = time.perf_counter()
        await asyncio.gather(*(one(w) for w in range(cell.clients)))
        cell.seconds = time.perf_counter() - begin


def run_overload(args: argparse.Namespace) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.tree:
        env["PYTHONPATH"] = str(Path(args.tree).resolve())
    if args.torch_threads is not None:
        env["OMP_NUM_THREADS"] = str(args.torch_threads)
    cells = []
    for docs in (20, 100):
        requests = load_requests(64, docs, docs, args.seed)
        for clients in (1, 8, 32, 128):
            cell = Cell(docs, clients)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "rerankkit", "serve", "--reranker", args.spec]
            command += ["--port", str(port), *args.serve_args.split()]
            with (
                tempfile.TemporaryFile() as log,
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=log, cwd=args.tree or ROOT
                ) as process,
            ):
                try:
                    asyncio.run(wait_healthy(url, process, timeout_s=300))
                    with httpx.Client(base_url=url, timeout=60) as warm:  # first-call costs
                        query, documents = requests[0]
                        body = {"model": "m", "query": query, "documents": documents}
                        warm.post("/v2/rerank", json=body)
                    before = cpu_seconds(process.pid)
                    asyncio.run(closed_loop(url, requests, cell, args.seconds, args.timeout))
                    cell.cpu_s = cpu_seconds(process.pid) - before
                finally:
                    process.terminate()
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        cell.other.append("server did not exit within 30 s of SIGTERM")
            print(overload_row(cell), *cell.other[:3], sep="\n", file=sys.stderr, flush=True)
            cells.append(cell)
    header = [
        f"`{args.spec.replace(str(ROOT.parent), '..')}`, tree `{args.tree or ROOT}`, server "
        f"options `{args.serve_args or '(defaults)'}`; {args.seconds:g} s per cell, client "
        f"timeout {args.timeout:g} s",
        "",
        "| docs | clients | answered/s | pairs/s | p50 ms | p95 ms | p99 ms | 503 | 504 "
        "| client timeouts | other errors | pairs per CPU-s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(header + [overload_row(cell) for cell in cells])


def overload_row(c: Cell) -> str:
    seconds = max(c.seconds, 1e-9)
    return (
        f"| {c.docs} | {c.clients} | {len(c.ok_ms) / seconds:.2f} | {c.pairs / seconds:.0f} | "
        f"{percentile(c.ok_ms, 50):.0f} | {percentile(c.ok_ms, 95):.0f} | "
        f"{percentile(c.ok_ms, 99):.0f} | {c.refused} | {c.deadline} | {c.client_timeouts} | "
        f"{len(c.other)} | {c.pairs / c.cpu_s if c.cpu_s else float('nan'):.0f} |"
    )


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process, in MB (VmRSS, VmHWM)."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(float(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def run_burst(args: argparse.Namespace) -> str:
    """Server RSS around bursts of 16 concurrent large bodies: near the 2 MB limit (scored),
    and 50 MB (refused with 413 before they are read)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if args.tree:
        env["PYTHONPATH"] = str(Path(args.tree).resolve())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rerankkit", "serve", "--reranker", args.spec]
    command += ["--port", str(port), *args.serve_args.split()]
    near = {"model": "m", "query": "q", "documents": ["word " * 380] * 990}  # ~1.9 MB
    huge = json.dumps({"model": "m", "query": "q", "documents": ["word " * 10_000] * 1000})
    lines = [f"`{args.spec}`, tree `{args.tree or ROOT}`", "", "| moment | RSS MB | peak MB |"]
    lines.append("|---|---:|---:|")
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(
            command, env=env, stdout=log, stderr=log, cwd=args.tree or ROOT
        ) as process,
    ):
        try:
            asyncio.run(wait_healthy(url, process, timeout_s=300))
            lines.append("| started | {:.0f} | {:.0f} |".format(*rss_mb(process.pid)))

            async def burst(body: bytes) -> list[int]:
                async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                    headers = {"content-type": "application/json"}
                    answers = await asyncio.gather(
                        *(
                            client.post("/v2/rerank", content=body, headers=headers)
                            for _ in range(16)
                        ),
                        return_exceptions=True,
                    )
                return [a.status_code if isinstance(a, httpx.Response) else 0 for a in answers]

            for name, body in (("1.9 MB", json.dumps(near).encode()), ("50 MB", huge.encode())):
                codes = asyncio.run(burst(body))
                time.sleep(2)
                rss, peak = rss_mb(process.pid)
                lines.append(
                    f"| after 16 x {name} (HTTP {sorted(set(codes))}) | {rss:.0f} | {peak:.0f} |"
                )
        finally:
            process.terminate()
            process.wait(60)
    return "\n".join(lines)


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
    parser.add_argument("--overload", action="store_true", help="the overload table (issue 24)")
    parser.add_argument("--seconds", type=float, default=8.0, help="--overload: seconds per cell")
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="--overload: client timeout, seconds"
    )
    parser.add_argument("--tree", default="", help="--overload: serve this checkout (PYTHONPATH)")
    parser.add_argument("--serve-args", default="", help="--overload: extra server options")
    parser.add_argument("--burst", action="store_true", help="server RSS around body bursts")
    args = parser.parse_args()
    if args.burst:
        print(run_burst(args))
        return 0
    if args.overload:
        if not 1 <= args.seconds <= 60 or not 1 <= args.timeout <= 120:
            parser.error("--seconds must be in [1, 60] and --timeout in [1, 120]")
        print(run_overload(args))
        return 0
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
