"""The settings of a rerank server: limits, the queue bound, deadlines, authentication,
batching, connections and shutdown.

Defaults beside text-embeddings-inference's (TEI, ``text-embeddings-router --help``):
``max_body_bytes`` 2 MB = TEI's ``--payload-limit``; ``max_queue`` 64 requests and
``max_queue_pairs`` 4096 pairs where TEI bounds ``--max-concurrent-requests`` 512 and batches
by ``--max-batch-tokens`` 16384; TEI has no per-request deadline, read timeout or shutdown
timeout of its own (its HTTP layer's defaults apply).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from rerankkit._secrets import clean_api_key

API_KEY_ENV = "RERANKKIT_API_KEY"


def _server_key(value: object, source: str) -> SecretStr | None:
    """A server key cleaned like a client's (``rerankkit._secrets``), but a set key that is
    blank is refused: treating it as unset would open a server its operator meant to close."""
    key = clean_api_key(value, source)  # type: ignore[arg-type]  # TypeError names the rest
    if key is None and value is not None:
        raise ValueError(f"{source} is set but blank (whitespace only); give the key or unset it")
    return key


def _api_key_from_env() -> SecretStr | None:
    value = os.environ.get(API_KEY_ENV)
    return _server_key(value, f"${API_KEY_ENV}") if value else None


class ServeSettings(BaseModel):
    """How ``rerankkit serve`` (:func:`rerankkit.serve._app.create_app`) answers requests.

    Each field is documented below (the ``rerankkit serve`` options show the same text).

    Raises:
        ValueError: A pydantic ``ValidationError`` naming the field: a count or limit of the
            wrong type (strict: ``"3"`` or ``True`` is not a count) or out of range.

    Example:
        >>> ServeSettings(api_key="secret", max_documents=100)
        ServeSettings(model_name='rerankkit', api_key=SecretStr('**********'), \
max_documents=100, max_document_chars=20000, max_query_chars=4000, max_queue=64, \
max_queue_pairs=4096, request_timeout_s=30.0, retry_after_s=1, batching=True, \
max_batch_pairs=512, max_wait_ms=5.0, max_body_bytes=2000000, max_header_bytes=16384, \
read_timeout_s=10.0, max_connections=512, shutdown_timeout_s=10, cors_origin=(), \
min_relevance=None, on_no_relevant='empty')
        >>> ServeSettings(max_queue=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        pydantic_core._pydantic_core.ValidationError: 1 validation error for ServeSettings
        max_queue
          Input should be greater than or equal to 1 [type=greater_than_equal...
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        use_attribute_docstrings=True,
        hide_input_in_errors=True,  # an error about api_key must not print the key
    )

    model_name: str = Field("rerankkit", min_length=1)
    """name reported as `model` in responses and on /health (a request's `model` field is
    accepted and not checked: one server serves one reranker)"""
    api_key: Annotated[
        SecretStr | None, BeforeValidator(lambda value: _server_key(value, "api_key"))
    ] = Field(default_factory=_api_key_from_env, strict=False)
    """require 'Authorization: Bearer KEY' on the rerank routes, 401 otherwise; /health,
    /metrics and the docs stay open; surrounding whitespace is stripped, a key that is blank
    or not printable ASCII is refused (default: $RERANKKIT_API_KEY; the environment keeps the key
    out of the process list)"""
    max_documents: int = Field(1000, ge=1)
    """documents per request; more answers 413"""
    max_document_chars: int = Field(20_000, ge=1)
    """characters per document; a longer one answers 413 naming its position"""
    max_query_chars: int = Field(4_000, ge=1)
    """characters per query; more answers 413"""
    max_queue: int = Field(64, ge=1)
    """rerank requests admitted at once (being scored or waiting for the model); one more
    answers 503 with Retry-After"""
    max_queue_pairs: int = Field(4096, ge=1)
    """(query, document) pairs admitted at once; a request that would pass it answers 503
    with Retry-After (a single larger request is admitted when the queue is empty)"""
    request_timeout_s: float = Field(30.0, gt=0, allow_inf_nan=False)
    """deadline of a rerank request from its admission, in seconds: past it the request
    answers 504 and its work is dropped; a request whose estimated wait (queued pairs /
    measured throughput) passes it answers 503 at once"""
    retry_after_s: int = Field(1, ge=0)
    """smallest Retry-After of a 503, in seconds (sent as is until a throughput is
    measured; then the time the queue needs to drain enough)"""
    batching: bool = True
    """merge concurrent requests into shared model calls (BatchingReranker; pointwise
    rerankers only)"""
    max_batch_pairs: int = Field(512, ge=1)
    """(query, document) pairs per merged model call"""
    max_wait_ms: float = Field(5.0, ge=0, allow_inf_nan=False)
    """longest wait, in milliseconds, of a request for others to merge with"""
    max_body_bytes: int = Field(2_000_000, ge=1)
    """request body size, in bytes; larger answers 413 before it is read (Content-Length)
    or as soon as it passes the limit"""
    max_header_bytes: int = Field(16_384, ge=1024)
    """request line and headers, in bytes (uvicorn h11's limit); larger answers 400"""
    read_timeout_s: float = Field(10.0, gt=0, allow_inf_nan=False)
    """longest time, in seconds, to receive a request's headers, and again its body: a
    slower client is disconnected (headers) or answered 408 (body)"""
    max_connections: int = Field(512, ge=1)
    """open connections and requests in progress (uvicorn's limit_concurrency); past it a
    request answers 503 and the server logs 'Exceeded concurrency limit'"""
    shutdown_timeout_s: int = Field(10, ge=0)
    """on SIGTERM/SIGINT: stop accepting, answer the requests in progress for up to this
    many seconds, cancel the rest, exit"""
    cors_origin: tuple[str, ...] = ()
    """allow browser requests from this origin (repeatable; '*' for any); off by default"""
    min_relevance: float | None = Field(None, ge=0, le=1, allow_inf_nan=False, strict=False)
    """the adaptive cut of every request that gives none: keep results with P(relevant) >= P
    (0-1), then top_n as a ceiling; needs a calibrated reranker (spec option
    ?calibration=CAL.json), refused at startup otherwise"""
    on_no_relevant: Literal["empty", "best"] = "empty"
    """when no result reaches min_relevance: return none ('empty') or the best one marked
    below_min_relevance ('best'); the response says abstained: true (default for requests
    that give none)"""
