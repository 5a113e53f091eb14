"""Fault injection: a loopback server answers 429 + Retry-After, 500/503, malformed JSON,
omitted/repeated/invented indices, too slowly, or drops the connection. Each is retried or
fails with one clear ``RemoteServiceError``; a call never returns a partial or duplicated
ranking; sync and async alike. API keys never show in errors, logs or ``repr``.

Retry waits are made tiny (``backoff=0.001``); the only real waits are one ``Retry-After: 1``
per mode and the slow answers (0.5 s against a 0.15 s timeout).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
from typing import Any

import pytest
from fault_server import Fault, FaultServer, fault_server_fixture, fresh_fixture, score_pair  # noqa: F401 (fixtures)

from rerankkit.errors import RemoteServiceError, RerankkitError
from rerankkit.remote import CohereReranker, TEIReranker
from rerankkit.testing import FunctionReranker

KEY = "sk-fault-91c2e7-SECRET"
QUERY = "capital of France"
DOCS = ["Berlin is the capital of Germany.", "Paris is the capital of France.", "cheese", "x"]
EXPECTED = FunctionReranker(score_pair).rerank(QUERY, DOCS)
FAST = {"backoff": 0.001, "max_backoff": 0.002, "timeout": 5.0, "max_retries": 3}


def cohere(url: str, **options: Any) -> CohereReranker:
    return CohereReranker("rerank-v3.5", base_url=url, api_key=KEY, **{**FAST, **options})


def call(reranker: CohereReranker, mode: str, documents: list[str] = DOCS) -> Any:
    """``rerank`` (sync) or ``arerank`` on a fresh loop (async), closing the pools."""
    if mode == "sync":
        with reranker:
            return reranker.rerank(QUERY, documents)

    async def run() -> Any:
        async with reranker:
            return await reranker.arerank(QUERY, documents)

    return asyncio.run(run())


MODES = ["sync", "async"]


# ---- retried, then right ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "faults",
    [
        [Fault("status", 500, body='{"message": "internal"}'), Fault("status", 503)],
        [Fault("status", 502), Fault("status", 504), Fault("status", 408)],
        [Fault("drop"), Fault("drop")],
        [Fault("slow", delay=0.5)],
        [Fault("status", 429)],  # no Retry-After: exponential backoff
    ],
    ids=["500-503", "502-504-408", "dropped-connection", "slower-than-timeout", "429"],
)
def test_transient_faults_are_retried(fresh: FaultServer, mode: str, faults: list[Fault]) -> None:
    fresh.script(*faults)
    assert call(cohere(fresh.url, timeout=0.15), mode) == EXPECTED
    assert len(fresh.seen) == len(faults) + 1


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_is_honoured(
    fresh: FaultServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    fresh.script(Fault("status", 429, headers={"Retry-After": "1"}, body='{"message": "slow"}'))
    with caplog.at_level(logging.WARNING, logger="rerankkit.remote._http"):
        assert call(cohere(fresh.url), mode) == EXPECTED
    (retry,) = [r.getMessage() for r in caplog.records if "retry 1 of 3" in r.getMessage()]
    assert "HTTP 429" in retry and retry.endswith("in 1.00 s")  # not the 0.001 s backoff


@pytest.mark.parametrize("mode", MODES)
def test_too_long_retry_after_fails_at_once(fresh: FaultServer, mode: str) -> None:
    fresh.script(Fault("status", 503, headers={"Retry-After": "120"}))
    with pytest.raises(RemoteServiceError, match="Retry-After 120 s exceeds") as caught:
        call(cohere(fresh.url, max_retry_after=30), mode)
    assert caught.value.status == 503 and len(fresh.seen) == 1


# ---- failed for good, with one clear error -----------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "status", "message", "attempts"),
    [
        (Fault("status", 503, body='{"message": "overloaded"}'), 503, "overloaded", 4),
        (Fault("drop"), None, "RemoteProtocolError", 4),
        (Fault("slow", delay=0.5), None, "no answer within 0.15 s", 4),
        (Fault("status", 400, body='{"message": "bad model"}'), 400, "bad model", 1),
        (Fault("malformed"), 200, "invalid JSON", 1),
        (Fault("omit"), 200, "index 3 missing", 1),
        (Fault("repeat"), 200, "repeated", 1),
        (Fault("invent"), 200, "invented index 9", 1),
        (Fault("nan"), 200, "not a finite number", 1),
    ],
    ids=["503", "drop", "timeout", "400", "malformed", "omit", "repeat", "invent", "nan"],
)
def test_final_failures_raise_one_error(
    fresh: FaultServer,
    mode: str,
    fault: Fault,
    status: int | None,
    message: str,
    attempts: int,
) -> None:
    fresh.script(*[fault] * attempts)
    documents = list(DOCS)
    with pytest.raises(RemoteServiceError, match=message) as caught:
        call(cohere(fresh.url, timeout=0.15), mode, documents)
    error = caught.value
    assert isinstance(error, RerankkitError) and isinstance(error, RuntimeError)
    assert (error.service, error.status) == ("cohere", status)
    assert len(fresh.seen) == attempts  # retryable ones retried, the others not resent
    assert documents == DOCS  # the caller's list untouched
    assert pickle.loads(pickle.dumps(error)).args == error.args


def test_body_excerpt_is_bounded(fresh: FaultServer) -> None:
    fresh.script(Fault("status", 422, body='{"message": "' + "long " * 400 + '"}'))
    with pytest.raises(RemoteServiceError) as caught:
        call(cohere(fresh.url), "sync")
    assert caught.value.body_excerpt.startswith('{"message": "long long')
    assert len(caught.value.body_excerpt) == 500


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(mode: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteServiceError, match="ConnectError") as caught:
        call(cohere(f"http://127.0.0.1:{port}", max_retries=1), mode)
    assert caught.value.status is None


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_chunk_fails_the_whole_call(fresh: FaultServer, mode: str) -> None:
    """Split in 4 requests; one answer invents an index: no partial ranking comes back."""
    fresh.script(Fault("invent"))
    reranker = cohere(fresh.url, max_documents=1, max_concurrency=1)
    with pytest.raises(RemoteServiceError, match="invented index 6"):
        call(reranker, mode)


@pytest.mark.parametrize("mode", MODES)
def test_chunks_retried_independently(fresh: FaultServer, mode: str) -> None:
    fresh.script(Fault("drop"), Fault("status", 500), Fault("repeat"))
    reranker = cohere(fresh.url, max_documents=2, max_concurrency=1)
    with pytest.raises(RemoteServiceError, match="repeated"):  # the 3rd answer is malformed
        call(reranker, mode)
    fresh.reset()
    fresh.script(Fault("drop"), Fault("status", 500))
    assert call(cohere(fresh.url, max_documents=2, max_concurrency=1), mode) == EXPECTED
    sent = [doc for seen in fresh.seen for doc in seen.body["documents"]]
    assert len(sent) == len(DOCS) + 2 + 2 and set(sent) == set(DOCS)  # 2 chunks resent


# ---- bounded in flight -----------------------------------------------------------------------
def test_requests_in_flight_are_bounded(fresh: FaultServer) -> None:
    fresh.script(*[Fault("slow", delay=0.1)] * 8)
    documents = [f"doc {i}" for i in range(8)]
    reranker = TEIReranker(fresh.url, max_documents=1, max_concurrency=2)
    with reranker:
        assert len(reranker.rerank(QUERY, documents)) == 8
    assert fresh.max_active == 2


async def test_async_in_flight_bounded_across_calls(fresh: FaultServer) -> None:
    fresh.script(*[Fault("slow", delay=0.1)] * 9)
    async with TEIReranker(fresh.url, max_documents=1, max_concurrency=3) as reranker:
        results = await asyncio.gather(*(reranker.arerank(QUERY, DOCS[:3]) for _ in range(3)))
    assert all(len(r) == 3 for r in results)
    assert fresh.max_active == 3


# ---- keys never leak ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_api_key_not_in_errors_logs_or_repr(
    fresh: FaultServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server echoes the Authorization header back in a 503 then a 401 body."""
    fresh.script(Fault("echo_auth", 503), Fault("echo_auth", 401))
    reranker = cohere(fresh.url)
    with caplog.at_level(logging.DEBUG), pytest.raises(RemoteServiceError) as caught:
        call(reranker, mode)
    error = caught.value
    assert error.status == 401 and "bad token Bearer ***" in error.body_excerpt
    shown = [str(error), repr(error), error.body_excerpt, repr(reranker), repr(reranker.client)]
    shown += [repr(reranker.client.__dict__), caplog.text]
    shown += [r.getMessage() for r in caplog.records]
    assert caplog.records  # the retry was logged (and httpx logged its requests)
    assert not [text for text in shown if KEY in text]


def test_api_key_not_in_spec_messages(fresh: FaultServer) -> None:
    from rerankkit._specs import build_reranker, parse_spec

    spec = f"cohere:rerank-v3.5?api_key={KEY}&base_url={fresh.url}&bogus=1"
    with pytest.raises(ValueError, match="unknown option bogus for CohereReranker") as caught:
        build_reranker(spec)
    parsed = parse_spec(spec)
    assert not [t for t in (str(caught.value), repr(parsed), parsed.label, parsed.text) if KEY in t]
    # an accepted option the constructor refuses: its error is quoted with the spec, key hidden
    with pytest.raises((TypeError, ValueError), match="max_retries") as refused:
        build_reranker(f"cohere:rerank-v3.5?api_key={KEY}&base_url={fresh.url}&max_retries=x")
    assert KEY not in str(refused.value)
    assert parsed.options["api_key"] == KEY  # still usable
    with pytest.raises(ValueError) as twice:
        parse_spec(f"cohere:m?api_key={KEY}&api_key={KEY}")
    assert KEY not in str(twice.value)
