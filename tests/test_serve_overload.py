"""``rerankkit serve`` under overload, abandoned requests and hostile clients (issue 24).

Each numbered item of the issue has its tests here: (1) a disconnect drops queued and running
work and frees its slot; (2) the deadline answers 504 and drops the work, Retry-After grows
with the queue; (3) body and header limits and the key are checked before the body is read;
(4) read timeouts and a SIGTERM that answers what is in flight and exits within the grace
period; (5) a lone surrogate is a 422 that leaves a merged batch alone; (6) edge shapes;
(7) CORS off by default. Servers run on 127.0.0.1 (in a thread, or a subprocess for SIGTERM)
and every wait is bounded; scorers are cheap fakes whose model calls the test gates.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rerankkit import BatchingReranker, Reranker
from rerankkit.backends._hf import run_batched
from rerankkit.serve import ServeSettings, create_app, serve_in_thread
from rerankkit.serve._admission import LoadMeter
from rerankkit.testing import FunctionReranker, KeywordReranker

BOUND_S = 10.0


def metric(app_or_url: Any, name: str, **labels: str) -> float:
    text = (
        httpx.get(f"{app_or_url}/metrics").text
        if isinstance(app_or_url, str)
        else asyncio.run(_get(app_or_url, "/metrics")).text
    )
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def _get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Gated(FunctionReranker):
    """Keyword scores; each model call records its queries and waits for the test's gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.scored: list[str] = []
        keyword = KeywordReranker()

        def score(query: str, document: str) -> float:
            self.scored.append(query)
            self.entered.set()
            assert self.gate.wait(BOUND_S), "the test never released the gate"
            return keyword.score(query, [document])[0]

        super().__init__(score)


def raw_request(body: bytes, *, length: int | None = None, extra: str = "") -> bytes:
    """A POST /rerank as bytes; ``length`` overrides the Content-Length sent."""
    return (
        f"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    ).encode() + body


def read_status(sock: socket.socket) -> int:
    sock.settimeout(BOUND_S)
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split()[1]) if head else 0


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=BOUND_S)


BODY = {"query": "red apple", "texts": ["a pear", "red apple pie"]}


# ------------------------------------------------------------------ 1. abandoned work


def test_a_disconnect_drops_queued_work_and_frees_its_slot() -> None:
    reranker = Gated()
    app = create_app(reranker, ServeSettings(max_queue=2, max_wait_ms=0.0))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=BOUND_S) as client:
        first: dict[str, httpx.Response] = {}
        holder = threading.Thread(target=lambda: first.update(r=client.post("/rerank", json=BODY)))
        holder.start()
        assert reranker.entered.wait(BOUND_S)  # the first request holds the model
        gone = connect(url)
        body = json.dumps({"query": "abandoned", "texts": ["x"] * 3}).encode()
        gone.sendall(raw_request(body))
        wait_until(lambda: metric(url, "rerankkit_batch_queue_pairs") == 3, "the queued request")
        assert client.post("/rerank", json=BODY).status_code == 503  # max_queue=2 is full
        gone.close()  # the client gives up
        wait_until(lambda: metric(url, "rerankkit_queue_depth") == 1, "the slot to free")
        assert metric(url, "rerankkit_batch_queue_pairs") == 0  # out of the batcher's queue
        assert metric(url, "rerankkit_abandoned_requests_total", reason="disconnect") == 1
        assert metric(url, "rerankkit_batch_abandoned_requests") == 1
        third: dict[str, httpx.Response] = {}
        thread = threading.Thread(target=lambda: third.update(r=client.post("/rerank", json=BODY)))
        thread.start()  # admitted in the freed slot
        wait_until(lambda: metric(url, "rerankkit_queue_depth") == 2, "the third request")
        reranker.gate.set()
        holder.join(BOUND_S)
        thread.join(BOUND_S)
        assert first["r"].status_code == 200 and third["r"].status_code == 200
        assert metric(url, "rerankkit_requests_total", route="/rerank", status="499") == 1
    assert "abandoned" not in reranker.scored  # never scored


class Batched(Reranker):
    """A pointwise reranker whose model runs through ``run_batched`` (one row per pair, one
    row per batch); the first forward pass waits for the test's gate."""

    pointwise = True

    def __init__(self) -> None:
        self.forwards = 0
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _forward(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.forwards += 1
        self.entered.set()
        assert self.gate.wait(BOUND_S)
        return inputs["attention_mask"].sum(axis=1, keepdims=True).astype("float32")

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        ids = [[1] * len(document) for document in documents]
        return run_batched(self._forward, ids, batch_size=1, pad_id=0).ravel().tolist()


@pytest.mark.parametrize("batching", [True, False])
def test_a_cancelled_caller_stops_the_running_model_call_at_the_next_batch(
    batching: bool,
) -> None:
    model = Batched()
    reranker: Reranker = BatchingReranker(model, max_wait_ms=0) if batching else model

    async def go() -> None:
        task = asyncio.ensure_future(reranker.arerank("q", ["a", "bb", "ccc", "dddd"]))
        while not model.entered.is_set():
            await asyncio.sleep(0.005)
        task.cancel()  # while the first of four model batches runs
        await asyncio.sleep(0.05)
        model.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())  # returns once its worker threads are joined (the unbatched call ended)
    if isinstance(reranker, BatchingReranker):
        reranker.close()  # joins the batcher's worker: its call has ended
        assert reranker.abandoned == 1
    assert model.forwards == 1  # three of four batches skipped
    assert model.rerank("q", ["a", "bb"])[0].index == 1  # the model still serves


# ------------------------------------------------------------------ 2. queue and deadline


def test_the_deadline_answers_504_and_drops_the_queued_work() -> None:
    reranker = Gated()
    app = create_app(reranker, ServeSettings(request_timeout_s=0.3, max_wait_ms=0.0))

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.ensure_future(client.post("/rerank", json=BODY))
            while not reranker.entered.is_set():
                await asyncio.sleep(0.005)
            second = await client.post("/rerank", json={"query": "late", "texts": ["x"]})
            answers = [await first, second]
            reranker.gate.set()
            return answers

    first, second = asyncio.run(go())
    for response in (first, second):
        assert response.status_code == 504, response.text
        assert "request_timeout_s=0.3" in response.json()["message"]
        assert int(response.headers["Retry-After"]) >= 1  # told when to retry
    assert metric(app, "rerankkit_abandoned_requests_total", reason="deadline") == 2
    assert metric(app, "rerankkit_queue_depth") == 0
    app.state.reranker.close()  # the running call ends; the queued one never starts
    assert "late" not in reranker.scored


def test_retry_after_grows_with_the_queue() -> None:
    now = [0.0]
    meter = LoadMeter(100, 10_000, 5.0, 1, clock=lambda: now[0])
    assert meter.admit(100) is None
    now[0] = 1.0
    meter.done(100, scored=True)  # measured: 100 pairs per busy second
    assert meter.pairs_per_s == 100.0
    waits = []
    for queued in (400, 1_000, 2_500):  # a 5 s deadline leaves time for 500 pairs
        meter.requests, meter.pairs = 1, queued  # what is admitted now
        refusal = meter.refusal(100)
        waits.append(None if refusal is None else refusal.retry_after_s)
    # 400 + 100 pairs fit; then the seconds until the excess over 500 pairs is scored
    assert waits == [None, (1_000 + 100 - 500) // 100, (2_500 + 100 - 500) // 100]
    full = LoadMeter(100, 1_000, 60.0, 1, clock=lambda: now[0])
    full._scored, full._busy_s = 100.0, 1.0  # the same throughput
    full.requests, full.pairs = 1, 1_000
    refusal = full.refusal(300)
    assert refusal is not None and refusal.retry_after_s == 3  # 300 pairs over max_queue_pairs


def test_a_503_names_the_pairs_bound_and_sends_retry_after() -> None:
    reranker = Gated()
    app = create_app(reranker, ServeSettings(max_queue_pairs=3, retry_after_s=2))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.ensure_future(client.post("/rerank", json=BODY))
            while not reranker.entered.is_set():
                await asyncio.sleep(0.005)
            refused = await client.post("/rerank", json=BODY)  # 2 + 2 pairs > 3
            reranker.gate.set()
            assert (await first).status_code == 200
            return refused

    refused = asyncio.run(go())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    assert "max_queue_pairs=3" in refused.json()["message"]


# ------------------------------------------------------------------ 3. limits before parsing


def test_an_oversized_body_is_refused_before_it_is_read() -> None:
    app = create_app(KeywordReranker(), ServeSettings(max_body_bytes=1_000))
    with serve_in_thread(app) as url:
        with connect(url) as sock:  # 50 MB announced, nothing sent: answered at once
            sock.sendall(raw_request(b"", length=50_000_000))
            assert read_status(sock) == 413
        chunk = b"200\r\n" + b"x" * 512 + b"\r\n"
        chunked = b"POST /rerank HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        with connect(url) as sock:  # chunks past the limit: 413 without the end of the body
            sock.sendall(chunked + chunk + chunk)
            assert read_status(sock) == 413
        big_header = raw_request(b"{}", extra=f"X-Big: {'a' * 40_000}\r\n")
        with connect(url) as sock:  # over max_header_bytes (16 KiB): h11 (400) or the guard
            sock.sendall(big_header)
            assert read_status(sock) in (400, 431)
        assert httpx.post(f"{url}/rerank", json=BODY).status_code == 200


def test_the_key_is_checked_before_the_body_is_read() -> None:
    app = create_app(KeywordReranker(), ServeSettings(api_key="s3cret"))
    with serve_in_thread(app) as url:
        with connect(url) as sock:
            sock.sendall(raw_request(b"", length=1_000_000))  # no key; the body never comes
            assert read_status(sock) == 401
        ok = httpx.post(f"{url}/rerank", json=BODY, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


# ------------------------------------------------------------------ 4. slow clients, SIGTERM


def test_slow_clients_are_cut_off_by_the_read_timeout() -> None:
    app = create_app(KeywordReranker(), ServeSettings(read_timeout_s=0.3))
    with serve_in_thread(app) as url:
        with connect(url) as sock:  # headers never finished: the connection is closed
            sock.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(BOUND_S)
            assert sock.recv(100) == b""
        with connect(url) as sock:  # body never finished: 408
            sock.sendall(raw_request(b'{"query": "q", "texts": ["a"]}')[:-10])
            assert read_status(sock) == 408
        assert httpx.post(f"{url}/rerank", json=BODY).status_code == 200


SERVER = textwrap.dedent(
    """
    import logging, sys, time
    from rerankkit.serve import ServeSettings, create_app
    from rerankkit.serve._server import bind, run
    from rerankkit.testing import FunctionReranker

    def slow(query, document):
        time.sleep(1.0)
        return 1.0

    logging.basicConfig(level=logging.INFO)
    settings = ServeSettings(batching=False, shutdown_timeout_s=2, read_timeout_s=30.0)
    sock = bind("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    run(create_app(FunctionReranker(slow), settings), settings, sock, banner=["started"])
    """
)


def test_sigterm_answers_in_flight_requests_and_exits_within_the_grace_period() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen(
        [sys.executable, "-c", SERVER],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = f"http://127.0.0.1:{int(process.stdout.readline())}"
            wait_until(lambda: _healthy(url), "the server")
            answers: list[int] = []
            one = {"query": "q", "texts": ["a"]}
            thread = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(f"{url}/rerank", json=one, timeout=BOUND_S).status_code
                )
            )
            thread.start()
            half = connect(url)  # a half-sent body that would hold the server open
            half.sendall(raw_request(b'{"query": "q", "texts": ["a"]}')[:-5])
            time.sleep(0.3)  # the request is in the model
            process.send_signal(signal.SIGTERM)
            start = time.monotonic()
            process.wait(BOUND_S)
            exited_after = time.monotonic() - start
            thread.join(BOUND_S)
            half.close()
        finally:
            if process.poll() is None:
                process.kill()
        log = process.stdout.read()
    assert answers == [200]  # in flight: answered
    assert exited_after < 2 + 5  # shutdown_timeout_s=2, plus slack for a loaded machine
    assert "started" in log and "stopped serving rerankkit" in log
    with pytest.raises(httpx.ConnectError):  # the rest refused
        httpx.get(f"{url}/health", timeout=1)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# ------------------------------------------------------------------ 5. invalid text


def test_a_lone_surrogate_is_a_422_and_leaves_the_merged_batch_alone() -> None:
    batcher = BatchingReranker(KeywordReranker(), max_wait_ms=300.0)
    app = create_app(batcher)
    good = [
        {"query": f"red apple {i}", "texts": ["a pear", "red apple", "apple"]} for i in range(3)
    ]
    bad = {"query": "red apple", "texts": ["a pear", "a \ud800 red apple"]}

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            requests = [
                client.post(
                    "/rerank",
                    content=json.dumps(body).encode(),  # "\\ud800" escaped, as JSON allows
                    headers={"content-type": "application/json"},
                )
                for body in [*good[:2], bad, good[2]]
            ]
            return await asyncio.gather(*requests)

    answers = asyncio.run(go())
    refused = answers.pop(2)
    assert refused.status_code == 422 and refused.json()["error_type"] == "invalid_text"
    assert refused.json()["message"] == (
        "documents[1] is not valid Unicode: lone surrogate U+D800 at character 2"
    )
    for body, answer in zip(good, answers, strict=True):
        want = KeywordReranker().rerank(body["query"], body["texts"])
        assert [(r["index"], r["score"]) for r in answer.json()] == [
            (r.index, r.score) for r in want
        ]
    assert batcher.model_calls == 1  # one merged call, no neighbour re-scored alone
    batcher.close()


# ------------------------------------------------------------------ 6-7. shapes, CORS


@pytest.fixture
def app() -> Any:
    return create_app(KeywordReranker())


def post(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize("field", ["top_n", "max_tokens_per_doc"])
def test_a_count_given_as_true_is_refused(app: Any, field: str) -> None:
    body = {"model": "m", "query": "q", "documents": ["a", "b"], field: True}
    response = post(app, "/v2/rerank", json=body)
    assert response.status_code == 422 and field in response.json()["message"]


def test_a_body_that_is_not_utf8_is_a_documented_400(app: Any) -> None:
    response = post(
        app,
        "/rerank",
        content=b'{"query": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    spec = asyncio.run(_get(app, "/openapi.json")).json()
    assert "400" in spec["paths"]["/rerank"]["post"]["responses"]


def test_cors_is_off_by_default_and_allows_the_given_origin(app: Any) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}

    async def options(target: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.options("/rerank", headers=preflight)

    assert "access-control-allow-origin" not in asyncio.run(options(app)).headers
    allowed = create_app(KeywordReranker(), ServeSettings(cors_origin=("https://app.example",)))
    answer = asyncio.run(options(allowed))
    assert answer.headers["access-control-allow-origin"] == "https://app.example"


def test_a_taken_port_fails_before_the_model_loads(capsys: pytest.CaptureFixture[str]) -> None:
    from rerankkit.cli._commands import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # a model that does not exist: reaching the load would fail differently
        assert (
            main(["serve", "--reranker", "cross-encoder:/no/such/model", "--port", str(port)]) == 2
        )
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_requests_that_all_time_out_still_teach_the_meter_to_refuse() -> None:
    """Nothing answered yet, every request dropped at the deadline: the pairs it held within
    the busy time bound the throughput, so the next request that cannot fit is refused."""
    now = [0.0]
    meter = LoadMeter(100, 10_000, 10.0, 1, clock=lambda: now[0])
    assert meter.admit(100) is None
    now[0] = 10.0
    meter.done(100, scored=False, timed_out=True)  # at most 100 pairs in 10 busy seconds
    assert meter.pairs_per_s == 10.0
    assert meter.admit(100) is None  # alone: always admitted
    refusal = meter.admit(100)  # 200 pairs at <= 10 pairs/s: past the 10 s deadline
    assert refusal is not None and refusal.retry_after_s == (200 - 100) // 10
