"""``rerankkit serve``: every wire shape, limits, auth, the bounded queue, metrics, and the
official cohere SDK against a real server on loopback.

Routes are exercised in-process through ``httpx.ASGITransport`` where the network is not the
point; the SDK, TEI-over-HTTP and command-line tests use a real socket on 127.0.0.1. Expected
rankings come from calling the same reranker in process, never from the server's own code.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import TRAINED_CE, requires_trained_ce
from rerankkit.serve import ServeSettings, create_app, serve_in_thread
from rerankkit.testing import FunctionReranker, KeywordReranker

QUERY = "red apple pie"
DOCS = ["a pear", "red apple pie recipe", "an apple", "apple pie with red apples", "stone"]
BOUND_S = 10.0


def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to ``app`` in process (no socket)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def expected(top_n: int | None = None) -> list[tuple[int, float]]:
    return [(r.index, r.score) for r in KeywordReranker().rerank(QUERY, DOCS, top_n=top_n)]


@pytest.fixture
def app() -> Any:
    return create_app(KeywordReranker(), ServeSettings(model_name="kw"))


# --------------------------------------------------------------------------- wire shapes


def test_cohere_v2(app: Any) -> None:
    body = {"model": "any", "query": QUERY, "documents": DOCS, "top_n": 3}
    response = call(app, "POST", "/v2/rerank", json=body)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"id", "results", "meta"}
    assert [(r["index"], r["relevance_score"]) for r in data["results"]] == expected(3)
    assert data["meta"] == {"api_version": {"version": "2"}}


def test_cohere_v2_max_tokens_per_doc_keeps_the_first_words(app: Any) -> None:
    body = {
        "model": "m",
        "query": "pie",
        "documents": ["apple pie", "pie"],
        "max_tokens_per_doc": 1,
    }
    results = call(app, "POST", "/v2/rerank", json=body).json()["results"]
    assert [(r["index"], r["relevance_score"]) for r in results] == [(1, 1.0), (0, 0.0)]


def test_cohere_v1_and_jina_share_one_route(app: Any) -> None:
    mixed = [doc if i % 2 else {"text": doc, "id": i} for i, doc in enumerate(DOCS)]
    data = call(app, "POST", "/v1/rerank", json={"query": QUERY, "documents": mixed}).json()
    assert [(r["index"], r["relevance_score"]) for r in data["results"]] == expected()
    # Jina's default: documents come back as {"text"}; Cohere's id/meta and Jina's model/usage
    assert [r["document"] for r in data["results"]] == [{"text": DOCS[i]} for i, _ in expected()]
    assert data["model"] == "kw" and data["meta"]["api_version"]["version"] == "1" and data["id"]
    words = len(QUERY.split()) * len(DOCS) + sum(len(d.split()) for d in DOCS)
    assert data["usage"] == {"prompt_tokens": words, "total_tokens": words}
    plain = {"query": QUERY, "documents": DOCS, "return_documents": False, "top_n": 2}
    results = call(app, "POST", "/v1/rerank", json=plain).json()["results"]
    assert results == [{"index": i, "relevance_score": s} for i, s in expected(2)]


def test_tei_shape(app: Any) -> None:
    body = {"query": QUERY, "texts": DOCS, "return_text": True, "truncate": True}
    data = call(app, "POST", "/rerank", json=body).json()
    assert data == [{"index": i, "score": s, "text": DOCS[i]} for i, s in expected()]
    data = call(app, "POST", "/rerank", json={"query": QUERY, "texts": DOCS}).json()
    assert data == [{"index": i, "score": s} for i, s in expected()]


def test_infinity_shape(app: Any) -> None:
    body = {"query": QUERY, "documents": DOCS, "return_documents": True, "top_n": 2}
    data = call(app, "POST", "/rerank", json=body).json()
    assert data["object"] == "rerank" and data["model"] == "kw"
    assert data["id"].startswith("rerankkit-") and isinstance(data["created"], int)
    assert data["results"] == [
        {"relevance_score": s, "index": i, "document": DOCS[i]} for i, s in expected(2)
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/rerank", {"model": "m", "query": "q", "documents": []}),  # Cohere v2
        ("/v1/rerank", {"model": "m", "query": "q", "documents": []}),  # Cohere v1 / Jina
        ("/rerank", {"query": "q", "texts": []}),  # TEI
        ("/rerank", {"query": "q", "documents": []}),  # Infinity
    ],
)
def test_zero_documents_is_a_422_in_every_wire_shape(
    app: Any, path: str, body: dict[str, Any]
) -> None:
    # Cohere answers 400 and TEI 422; an empty 200 hid a caller's bug (issue 24, item 6)
    assert "at least 1 item" in error_of(call(app, "POST", path, json=body), 422)


def test_scores_are_json_safe_and_the_failed_document_is_kept() -> None:
    # A NaN score (a failed document) is ranked last and sent as a finite number.
    nan_app = create_app(FunctionReranker(lambda q, d: float("nan") if d == "bad" else 1.0))
    response = call(nan_app, "POST", "/rerank", json={"query": "q", "texts": ["bad", "good"]})
    assert response.status_code == 200
    data = json.loads(response.text)  # strict JSON: no NaN or Infinity tokens
    assert [r["index"] for r in data] == [1, 0]
    assert data[1]["score"] == 1.0  # the lowest judged score, ranked after it (issue 27)


# --------------------------------------------------------------------------- errors


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type", "message"} and body["error"] == body["message"]
    return str(body["message"])


def test_limits_answer_413_naming_the_limit() -> None:
    settings = ServeSettings(max_documents=3, max_document_chars=10, max_query_chars=20)
    app = create_app(KeywordReranker(), settings)
    too_many = {"model": "m", "query": "q", "documents": ["a"] * 4}
    assert "max_documents=3" in error_of(call(app, "POST", "/v2/rerank", json=too_many), 413)
    too_long = {"query": "q", "documents": ["short", "x" * 11]}
    message = error_of(call(app, "POST", "/v1/rerank", json=too_long), 413)
    assert "documents[1]" in message and "max_document_chars=10" in message
    long_query = {"query": "q" * 21, "texts": ["a"]}
    assert "max_query_chars=20" in error_of(call(app, "POST", "/rerank", json=long_query), 413)


@pytest.mark.parametrize(
    ("path", "body", "names"),
    [
        ("/v2/rerank", {"model": "m", "documents": ["a"]}, "query"),
        ("/v2/rerank", {"model": "m", "query": "  ", "documents": ["a"]}, "query"),
        ("/v2/rerank", {"model": "m", "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
        ("/v2/rerank", {"model": "m", "query": "q", "documents": ["a", 3]}, "documents.1"),
        ("/v1/rerank", {"query": "q", "documents": [{"title": "no text"}]}, "documents.0"),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "rank_fields": ["t"]}, "rank_fields"),
        ("/rerank", {"query": "q", "texts": ["a"], "raw_scores": True}, "raw_scores"),
        ("/rerank", {"query": "q", "texts": ["a"], "documents": ["a"]}, "exactly one"),
        ("/rerank", {"query": "q"}, "exactly one"),
    ],
)
def test_malformed_requests_answer_422_naming_the_field(
    app: Any, path: str, body: dict[str, Any], names: str
) -> None:
    assert names in error_of(call(app, "POST", path, json=body), 422)


def test_invalid_json_and_unknown_routes_answer_json_errors(app: Any) -> None:
    bad = call(
        app,
        "POST",
        "/v2/rerank",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    error_of(bad, 422)
    error_of(call(app, "GET", "/v3/rerank"), 404)


def test_api_key_answers_401_without_or_with_a_wrong_key() -> None:
    app = create_app(KeywordReranker(), ServeSettings(api_key="s3cret"))
    body = {"query": QUERY, "texts": DOCS}
    response = call(app, "POST", "/rerank", json=body)
    assert "Bearer" in error_of(response, 401) and response.headers["www-authenticate"] == "Bearer"
    error_of(call(app, "POST", "/rerank", json=body, headers={"Authorization": "Bearer nope"}), 401)
    ok = call(app, "POST", "/rerank", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert call(app, "GET", "/health").status_code == 200  # health and metrics stay open
    assert call(app, "GET", "/metrics").status_code == 200
    assert "s3cret" not in repr(app.state.settings)


def test_a_failing_reranker_answers_500_with_the_error() -> None:
    def broken(query: str, document: str) -> float:
        raise OSError("model file vanished")

    app = create_app(FunctionReranker(broken), ServeSettings(batching=False))
    message = error_of(call(app, "POST", "/rerank", json={"query": "q", "texts": ["a"]}), 500)
    assert "model file vanished" in message


class GatedReranker(FunctionReranker):
    """Scores by keyword overlap, but every model call waits for the test's gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        keyword = KeywordReranker()

        def score(query: str, document: str) -> float:
            self.entered.set()
            assert self.gate.wait(BOUND_S), "the test never released the gate"
            return keyword.score(query, [document])[0]

        super().__init__(score)


@pytest.mark.parametrize("batching", [True, False])
def test_a_full_queue_answers_503_with_retry_after(batching: bool) -> None:
    reranker = GatedReranker()
    settings = ServeSettings(max_queue=1, retry_after_s=7, batching=batching)
    app = create_app(reranker, settings)

    async def go() -> tuple[httpx.Response, httpx.Response, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"query": QUERY, "texts": DOCS}
            first = asyncio.ensure_future(client.post("/rerank", json=body))
            deadline = time.monotonic() + BOUND_S
            while not reranker.entered.is_set():  # the first request holds the only slot
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
            second = await client.post("/rerank", json=body)
            busy_metrics = (await client.get("/metrics")).text
            reranker.gate.set()
            return await first, second, busy_metrics

    first, second, busy_metrics = asyncio.run(go())
    assert first.status_code == 200 and [r["index"] for r in first.json()] == [
        i for i, _ in expected()
    ]
    assert "max_queue" in error_of(second, 503)
    assert second.headers["retry-after"] == "7"
    assert metric_value(busy_metrics, "rerankkit_queue_depth") == 1.0
    after = call(app, "POST", "/rerank", json={"query": QUERY, "texts": DOCS})
    assert after.status_code == 200  # the slot is free again


# --------------------------------------------------------------------------- metrics


def metric_value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_parse_and_count_what_happened() -> None:
    app = create_app(KeywordReranker(), ServeSettings(max_documents=5))
    for _ in range(3):
        assert call(app, "POST", "/rerank", json={"query": QUERY, "texts": DOCS}).status_code == 200
    assert (
        call(
            app, "POST", "/v2/rerank", json={"model": "m", "query": "q", "documents": DOCS * 2}
        ).status_code
        == 413
    )
    text = call(app, "GET", "/metrics").text
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "rerankkit_requests",
        "rerankkit_request_duration_seconds",
        "rerankkit_documents",
        "rerankkit_queue_depth",
        "rerankkit_batch_queue_pairs",
        "rerankkit_model_calls",
    } <= families
    assert metric_value(text, "rerankkit_requests_total", route="/rerank", status="200") == 3
    assert metric_value(text, "rerankkit_requests_total", route="/v2/rerank", status="413") == 1
    assert metric_value(text, "rerankkit_documents_total", route="/rerank") == 3 * len(DOCS)
    assert metric_value(text, "rerankkit_request_duration_seconds_count", route="/rerank") == 3
    assert metric_value(text, "rerankkit_queue_depth") == 0
    assert metric_value(text, "rerankkit_model_calls") == 3  # batching is on by default


def test_openapi_docs_list_every_route(app: Any) -> None:
    assert call(app, "GET", "/docs").status_code == 200
    paths = call(app, "GET", "/openapi.json").json()["paths"]
    assert {"/v2/rerank", "/v1/rerank", "/rerank", "/health", "/metrics"} <= set(paths)


# --------------------------------------------------------------------------- real sockets


@pytest.fixture(scope="module")
def cross_encoder() -> Any:
    from rerankkit import CrossEncoderReranker

    return CrossEncoderReranker(str(TRAINED_CE), dtype="float32")  # merged batches: 1e-6 apart


PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Paris is the capital and most populous city of France.",
    "Berlin is the capital of Germany and its largest city.",
    "France is known for its wine, cheese and the Tour de France.",
    "The capital of France has been Paris since the Middle Ages.",
    "Lyon is the third-largest city in France, known for its cuisine.",
    "Madrid is the capital of Spain.",
    "Photosynthesis converts light energy into chemical energy in plants.",
]
QUESTION = "what is the capital of France"


@pytest.mark.slow
@requires_trained_ce
def test_official_cohere_sdk_and_tei_over_http_match_the_in_process_ranking(
    cross_encoder: Any,
) -> None:
    import cohere

    local = cross_encoder.rerank(QUESTION, PASSAGES)
    app = create_app(cross_encoder, ServeSettings(model_name="ce"))
    with serve_in_thread(app) as url, httpx.Client(timeout=60) as http:
        v2 = cohere.ClientV2(api_key="x", base_url=url, httpx_client=http)
        response = v2.rerank(model="ce", query=QUESTION, documents=PASSAGES, top_n=5)
        assert [r.index for r in response.results] == [r.index for r in local[:5]]
        for got, want in zip(response.results, local, strict=False):
            assert got.relevance_score == pytest.approx(want.score, abs=1e-5)

        v1 = cohere.Client(api_key="x", base_url=url, httpx_client=http)
        old = v1.rerank(model="ce", query=QUESTION, documents=PASSAGES, return_documents=True)
        assert [r.index for r in old.results] == [r.index for r in local]
        assert [r.document.text for r in old.results] == [PASSAGES[r.index] for r in local]

        tei = http.post(f"{url}/rerank", json={"query": QUESTION, "texts": PASSAGES})
        assert [(r["index"], pytest.approx(r["score"], abs=1e-5)) for r in tei.json()] == [
            (r.index, r.score) for r in local
        ]

        # 12 SDK clients at once: micro-batched on the server, each gets its own ranking
        questions = [QUESTION, "capital of Germany", "plants and light", "cities in France"] * 3
        wanted = {q: [r.index for r in cross_encoder.rerank(q, PASSAGES)] for q in set(questions)}
        got: dict[int, list[int]] = {}

        def ask(i: int) -> None:
            answer = v2.rerank(model="ce", query=questions[i], documents=PASSAGES)
            got[i] = [r.index for r in answer.results]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert got == {i: wanted[q] for i, q in enumerate(questions)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cli_server(tmp_path: Any) -> Iterator[tuple[str, Any]]:
    port = free_port()
    env = {**os.environ, "RERANKKIT_API_KEY": "from-env"}
    command = [sys.executable, "-m", "rerankkit", "serve", "--reranker", "keyword:"]
    command += ["--port", str(port)]
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with (
        log.open("wb") as out,
        subprocess.Popen(
            [*command, "--max-documents", "4"], env=env, stdout=out, stderr=out
        ) as process,
    ):
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "rerankkit serve did not start"
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield url, log
        finally:
            process.terminate()
            process.wait(30)


def test_the_command_serves_on_loopback(cli_server: tuple[str, Any]) -> None:
    url, log = cli_server
    auth = {"Authorization": "Bearer from-env"}
    health = httpx.get(f"{url}/health").json()
    assert health == {"status": "ok", "model": "keyword", "batching": True}
    body = {"model": "keyword", "query": "red apple", "documents": ["pear", "red apple"]}
    response = httpx.post(f"{url}/v2/rerank", json=body, headers=auth)
    assert [r["index"] for r in response.json()["results"]] == [1, 0]
    assert httpx.post(f"{url}/v2/rerank", json=body).status_code == 401
    five = {**body, "documents": ["a"] * 5}
    assert httpx.post(f"{url}/v2/rerank", json=five, headers=auth).status_code == 413
    started = log.read_text()  # the start lines, then one access-log line per request
    assert f"serving keyword (cpu_path n/a) on {url}" in started
    assert "limits: 4 documents" in started and "API key on" in started
    assert '"POST /v2/rerank HTTP/1.1" 413' in started


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("-1", "input should be greater than or equal to 0, got -1"),
        ("65536", "input should be less than or equal to 65535, got 65536"),
        ("99999", "input should be less than or equal to 65535, got 99999"),
        ("http", "input should be a valid integer, unable to parse string as an integer, got http"),
    ],
)
def test_a_port_outside_0_to_65535_is_a_usage_error(
    port: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # uvicorn itself failed on -1 with a resolver error (exit 3) and started on 99999
    from rerankkit.cli._commands import main

    assert main(["serve", "--reranker", "keyword:", "--port", port]) == 2
    err = capsys.readouterr().err
    assert err == f"rerankkit serve: error: argument --port: {message}\n"


@pytest.mark.slow
@requires_trained_ce
def test_without_batching_concurrent_requests_on_the_default_cpu_path_all_succeed() -> None:
    # The default CPU path may be OpenVINO, whose one infer request is not reentrant: without
    # micro-batching, concurrent requests reach the model from several threads at once.
    from rerankkit import CrossEncoderReranker

    default = CrossEncoderReranker(str(TRAINED_CE))
    questions = [QUESTION, "capital of Germany", "plants and light", "cities in France"] * 2
    wanted = {q: default.rerank(q, PASSAGES) for q in set(questions)}
    app = create_app(default, ServeSettings(batching=False))

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(
                *(client.post("/rerank", json={"query": q, "texts": PASSAGES}) for q in questions)
            )

    for question, response in zip(questions, asyncio.run(go()), strict=True):
        assert response.status_code == 200, response.text
        got = [(r["index"], r["score"]) for r in response.json()]
        assert got == [(r.index, pytest.approx(r.score, abs=1e-5)) for r in wanted[question]]
