"""A fault-injecting rerank server on 127.0.0.1 for the remote-client tests.

``FaultServer`` is ``http.server`` in a thread (not an ASGI app: only a raw socket handler can
drop a connection without answering). It answers every wire shape rerankkit's clients speak,
chosen from the request body the way the real services differ:

=====================================  ============================================
request                                answer
=====================================  ============================================
``documents`` (+ ``top_n``)            ``{"results": [{index, relevance_score}]}``
                                       (Cohere v1/v2, Jina, vLLM /v1/rerank, Infinity)
``documents`` + ``top_k`` (Voyage)     ``{"data": [{index, relevance_score}]}``
``input`` (Mixedbread)                 ``{"data": [{index, score}]}``
``texts`` (TEI)                        ``[{index, score}]``
``text_1``/``text_2`` (vLLM /score)    ``{"data": [{index, score}]}``
=====================================  ============================================

Scores come from :func:`score_pair`, so a test computes the expected ranking in-process with
``FunctionReranker(score_pair)``. Answers are in descending score order (as services send
them), so a client that forgot to map indices back would fail. ``script(...)`` queues faults,
each consumed by one request; with none queued the request is answered correctly.

The fixtures ``fault_server`` (one server per test module) and ``fresh`` (that server with
its record and queued faults cleared) are shared by importing ``fault_server_fixture`` and
``fresh_fixture`` into a test module.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def score_pair(query: str, document: str) -> float:
    """Query words found in the document, plus a length term that keeps scores distinct."""
    terms = set(re.findall(r"\w+", query.lower()))
    hits = sum(word in terms for word in re.findall(r"\w+", document.lower()))
    return hits + len(document) / 1000


@dataclass
class Fault:
    """One scripted answer.

    kind: ``status`` (``status``, ``headers``, ``body``), ``malformed`` (200, bad JSON),
    ``drop`` (close the connection, no answer), ``slow`` (answer correctly after ``delay``
    seconds), ``omit``/``repeat``/``invent`` (200, a tampered index list), ``echo_auth``
    (``status`` with the request's Authorization header in the body), ``nan`` (a NaN score).
    """

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    body: Any
    headers: dict[str, str]


def _answer(path: str, body: dict[str, Any]) -> tuple[Any, list[dict[str, Any]], str]:
    """(answer template, result items in rank order, score key) for a request body."""
    if "texts" in body:
        query, documents, shape = body["query"], body["texts"], "tei"
    elif "text_1" in body:
        query, documents, shape = body["text_1"], body["text_2"], "score"
    elif "input" in body:
        query, documents, shape = body["query"], body["input"], "mixedbread"
    elif "top_k" in body:
        query, documents, shape = body["query"], body["documents"], "voyage"
    else:
        query, documents, shape = body["query"], body["documents"], "cohere"
    key = "score" if shape in ("tei", "score", "mixedbread") else "relevance_score"
    scored = [{"index": i, key: score_pair(query, doc)} for i, doc in enumerate(documents)]
    scored.sort(key=lambda item: -item[key])
    cut = body.get("top_n") or body.get("top_k")
    if isinstance(cut, int) and cut > 0:
        scored = scored[:cut]
    if shape == "tei":
        return None, scored, key
    return {"data" if shape in ("voyage", "mixedbread", "score") else "results": None}, scored, key


class FaultServer:
    """Start with ``start()``, stop with ``stop()`` (the fixture does both)."""

    def __init__(self) -> None:
        self.faults: deque[Fault] = deque()
        self.seen: list[Seen] = []
        self.active = 0
        self.max_active = 0  # most requests being answered at once
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with server.lock:
                    server.seen.append(Seen(self.path, body, dict(self.headers.items())))
                    fault = server.faults.popleft() if server.faults else None
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    server.respond(self, body, fault)
                finally:
                    with server.lock:
                        server.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def script(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()
            self.max_active = 0

    # ---- answering ---------------------------------------------------------------------------
    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, text: str, headers: dict[str, str]
    ) -> None:
        data = text.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def respond(self, handler: BaseHTTPRequestHandler, body: Any, fault: Fault | None) -> None:
        kind = fault.kind if fault else "ok"
        if kind == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "status":
            assert fault is not None
            self._send(handler, fault.status, fault.body, fault.headers)
            return
        if kind == "echo_auth":
            assert fault is not None
            echoed = json.dumps({"message": f"bad token {handler.headers.get('Authorization')}"})
            self._send(handler, fault.status, echoed, {})
            return
        if kind == "malformed":
            self._send(handler, 200, '{"results": [{"index": 0, "relevance_', {})
            return
        if kind == "slow":
            assert fault is not None
            time.sleep(fault.delay)
        template, items, key = _answer(handler.path, body)
        if kind == "omit":
            items = items[:-1]
        elif kind == "repeat":
            items = [*items[:-1], dict(items[0])]
        elif kind == "invent":
            items = [*items, {"index": len(items) + 5, key: 0.5}]
        elif kind == "nan":
            items[0][key] = float("nan")
        if template is None:
            answer: Any = items
        else:
            (list_key,) = template
            answer = {list_key: items, "model": "fault-server"}
        try:
            self._send(handler, 200, json.dumps(answer), {})
        except OSError:  # the client gave up (timeout) before a slow answer
            handler.close_connection = True


@pytest.fixture(scope="module", name="fault_server")
def fault_server_fixture() -> Iterator[FaultServer]:
    running = FaultServer().start()
    yield running
    running.stop()


@pytest.fixture(name="fresh")
def fresh_fixture(fault_server: FaultServer) -> FaultServer:
    fault_server.reset()
    return fault_server
