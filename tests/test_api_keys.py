"""Issue 25, kind 4: API keys are cleaned and checked where they enter, and never shown.

A key read from a file or a Kubernetes secret ends in a newline; a pasted one may hold a
non-ASCII character. Each test runs the real client against a loopback server
(``fault_server``) and looks for the key, in every form it can take, in what a user sees:
the error, its ``repr``, the retry WARNINGs, the adapters' ``metadata["rerank_error"]``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fault_server import Fault, FaultServer, fault_server_fixture, fresh_fixture  # noqa: F401 (fixtures)

from rerankkit.errors import RemoteServiceError
from rerankkit.remote import CohereReranker, TEIReranker
from rerankkit.serve._settings import ServeSettings

QUERY = "capital of France"
DOCS = ["Berlin is the capital of Germany.", "Paris is the capital of France."]
FAST = {"backoff": 0.001, "max_backoff": 0.002, "timeout": 5.0, "max_retries": 2}
# Printable ASCII that JSON, repr and percent-encoding each write differently.
KEY = 'sk-qzxw\\b/c"d'
FORMS = [
    KEY,
    'sk-qzxw\\\\b/c"d',  # repr / str.encode("unicode_escape")
    'sk-qzxw\\\\b/c\\"d',  # JSON string
    'sk-qzxw\\\\b\\/c\\"d',  # JSON with escaped slashes
    "sk-qzxw%5Cb%2Fc%22d",  # percent-encoded
    "qzxw",  # the key's random part, whatever wraps it (not hex: a memory address in a
    # DEBUG log line, e.g. 0x7f3a91b67050, once matched the earlier "7f3a")
]


def _leaks(texts: list[str]) -> list[str]:
    return [text for text in texts if any(form in text for form in FORMS)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_trailing_newline_is_stripped_and_the_request_succeeds(
    fresh: FaultServer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CO_API_KEY", "sk-from-a-secret-file\n")
    for given in ("  sk-given\r\n", None):  # the argument, then the environment variable
        with CohereReranker("rerank-v3.5", base_url=fresh.url, api_key=given) as reranker:
            if mode == "sync":
                reranker.rerank(QUERY, DOCS)
            else:
                asyncio.run(reranker.arerank(QUERY, DOCS))
        sent = "sk-given" if given else "sk-from-a-secret-file"
        assert fresh.seen[-1].headers["Authorization"] == f"Bearer {sent}"


def test_an_invalid_key_is_refused_up_front_naming_its_source_not_its_value(
    fresh: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    secret = "sk-caf\u00e9-qzxw"
    cases = [
        ({"api_key": secret}, None, "api_key holds a non-ASCII character at position 6"),
        ({"api_key": "sk-qzxw\nX-Injected: 1"}, None, "api_key holds a control character"),
        ({}, secret, "\\$CO_API_KEY holds a non-ASCII character at position 6"),
    ]
    for arguments, variable, message in cases:
        if variable is None:
            monkeypatch.delenv("CO_API_KEY", raising=False)
        else:
            monkeypatch.setenv("CO_API_KEY", variable)
        with pytest.raises(ValueError, match=message) as caught:
            CohereReranker("rerank-v3.5", base_url=fresh.url, **arguments)
        assert "qzxw" not in str(caught.value) and "caf" not in str(caught.value)
    assert fresh.seen == []  # nothing was sent
    for blank in ("", " \n"):
        with pytest.raises(ValueError, match="api_key is set but blank"):
            ServeSettings(api_key=blank)
    with pytest.raises(ValueError, match="api_key holds a control character") as served:
        ServeSettings(api_key="sk-qzxw\x00")
    assert "qzxw" not in str(served.value)
    assert ServeSettings(api_key=" sk-serve\n").api_key.get_secret_value() == "sk-serve"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_form_of_the_key_is_redacted_from_errors_warnings_and_metadata(
    fresh: FaultServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_core.documents import Document

    from langchain_rerankkit import RerankKitCompressor

    # The server echoes the Authorization header inside a JSON body (so JSON-escaped): a 503
    # (retried, a WARNING), then a 401 (final).
    fresh.script(Fault("echo_auth", 503), Fault("echo_auth", 401))
    reranker = CohereReranker("rerank-v3.5", base_url=fresh.url, api_key=KEY, **FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(RemoteServiceError) as caught:
        if mode == "sync":
            reranker.rerank(QUERY, DOCS)
        else:
            asyncio.run(reranker.arerank(QUERY, DOCS))
    error = caught.value
    assert error.status == 401 and "bad token Bearer ***" in error.body_excerpt
    assert any("503" in record.getMessage() for record in caplog.records)  # the retry WARNING

    fresh.script(Fault("echo_auth", 401))
    compressor = RerankKitCompressor(reranker=reranker, top_n=None)
    documents = [Document(text) for text in DOCS]
    if mode == "sync":
        kept = compressor.compress_documents(documents, QUERY)
    else:
        kept = asyncio.run(compressor.acompress_documents(documents, QUERY))
    failures = [str(document.metadata["rerank_error"]) for document in kept]
    assert [d.page_content for d in kept] == DOCS and "401" in failures[0]  # documents kept

    shown: list[Any] = [str(error), repr(error), error.body_excerpt, error.reason, repr(reranker)]
    shown += [caplog.text, *(record.getMessage() for record in caplog.records), *failures]
    assert caplog.records and not _leaks(shown)


def test_a_request_httpx_refuses_to_write_is_not_retried(
    fresh: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    # An illegal header value (here a user header) fails the same way every time.
    reranker = TEIReranker(base_url=fresh.url, headers={"X-Trace": "a\nb"}, **FAST)
    with caplog.at_level(logging.WARNING), pytest.raises(RemoteServiceError) as caught:
        reranker.rerank(QUERY, DOCS)
    assert "LocalProtocolError" in str(caught.value)
    assert not [r for r in caplog.records if "retry" in r.getMessage().lower()]
    assert fresh.seen == []
