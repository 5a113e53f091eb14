"""One HTTP core for every rerank service: pooled httpx clients, timeouts, retries, limits.

``ServiceClient.post_json`` (sync) and ``apost_json`` (async) send one JSON request and return
the decoded JSON answer, or raise ``RemoteServiceError``:

* transport: one pooled ``httpx.Client`` for sync calls (thread-safe, shared by the threads
  that send a large input's chunks) and one ``httpx.AsyncClient`` per event loop (an httpx
  async pool is bound to the loop it first ran on), closed with its loop: ``asyncio.run``
  closes it before closing the loop, so one ``asyncio.run(reranker.arerank(...))`` per
  request (Flask, Celery) leaves no client, socket or loop behind;
* ``timeout``: the longest wait of each step of an attempt (httpx's connect, read, write and
  pool timeouts: a server silent that long fails the attempt; one that keeps trickling bytes
  is not cut, as httpx has no whole-response deadline);
* at most ``max_concurrency`` requests of this client in flight at once: one budget for its
  sync calls (all threads), one per event loop for its async calls (a semaphore held only
  while a request is on the wire, not while backing off);
* retries by tenacity, as :class:`rerankkit.RetryPolicy` declares them: connect errors,
  timeouts, a dropped connection, HTTP 408/429 and 5xx are retried up to ``max_retries``
  times with exponential backoff and full jitter, or after the ``Retry-After`` the service
  asked for (seconds or an HTTP date). A ``Retry-After`` longer than ``max_retry_after`` is
  not waited for: the error is raised at once. Other statuses (400, 401, 404, 413, 422, ...)
  and malformed JSON are not retried: resending cannot fix them, nor can a request httpx
  refuses to write (``LocalProtocolError``: an illegal header value).

The API key is a ``pydantic.SecretStr`` (its ``repr`` is ``SecretStr('**********')``), cleaned
and checked where it enters (``rerankkit._secrets``: surrounding whitespace stripped, a key an
HTTP header cannot carry refused without showing it), is sent only as an ``Authorization``
header (httpx masks it in ``repr(client.headers)``), and every form of it (as sent, escaped,
percent-encoded) is cut out of every error message and log line, even when a service echoes
it back.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import math
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, NamedTuple

from pydantic import SecretStr

from rerankkit._retry import RetryPolicy
from rerankkit._secrets import redact
from rerankkit.errors import MissingExtraError, RemoteServiceError

try:
    import httpx
    import tenacity
except ModuleNotFoundError as _missing:  # pragma: no cover - exercised by packaging tests
    raise MissingExtraError(_missing.name or "httpx", "remote") from _missing

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 500
"""Characters of an answer's body kept in ``RemoteServiceError.body_excerpt``."""


class _LoopPool(NamedTuple):
    """One event loop's async pool, its concurrency bound and the generator that closes it."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore
    closer: AsyncGenerator[None, None]


async def _close_with_loop(
    client: httpx.AsyncClient, forget: Callable[[], object]
) -> AsyncGenerator[None, None]:
    """Suspends once; closed by the loop's ``shutdown_asyncgens`` (or ``aclose``), it forgets
    the pool and closes ``client`` on its own loop."""
    try:
        yield
    finally:
        forget()
        await client.aclose()


class _Retryable(Exception):
    """An attempt that may succeed if sent again; carries the error it would raise and the
    ``retry_after`` seconds the service asked for (read by the policy's wait)."""

    def __init__(self, error: RemoteServiceError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return repr(self.error)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110
    section 10.2.3); ``None`` when absent or unreadable. Negative waits become 0.

    Example:
        >>> parse_retry_after("2"), parse_retry_after("0.5"), parse_retry_after("soon")
        (2.0, 0.5, None)
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
        10.0
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


class ServiceClient:
    """Pooled, retrying JSON-over-HTTP client of one service (see the module docstring).

    Args:
        service: Name used in errors and logs (``"cohere"``).
        base_url: Checked URL (``check_base_url``): scheme, host, port, optional prefix.
        api_key: Sent as ``Authorization: Bearer <key>``; ``None`` sends no header.
        policy: Timeouts, retries and the concurrency bound (its ``retry_on`` is not used:
            this client decides what is retryable from the HTTP answer).
        headers: Extra headers sent with every request.
        transport, async_transport: Custom httpx transports (tests, proxies).

    Example:
        >>> client = ServiceClient("tei", "http://127.0.0.1:8080", api_key=SecretStr("sk-123"))
        >>> client
        ServiceClient(service='tei', base_url='http://127.0.0.1:8080')
        >>> client.close()
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        api_key: SecretStr | None = None,
        policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url
        self.policy = policy or RetryPolicy()
        self._api_key = api_key if api_key is not None and api_key.get_secret_value() else None
        self._headers = {"Accept": "application/json", **dict(headers or {})}
        self._transport, self._async_transport = transport, async_transport
        self._sync: httpx.Client | None = None
        self._sync_lock = threading.Lock()
        self._sync_slots = threading.BoundedSemaphore(self.policy.max_concurrency)
        # One async pool and one semaphore per event loop (both are bound to their loop), and
        # the async generator whose closing closes that pool (see _async_client).
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def has_api_key(self) -> bool:
        """Whether requests carry an ``Authorization`` header (the key itself stays hidden)."""
        return self._api_key is not None

    # ---- clients -------------------------------------------------------------------------
    def _client_options(self) -> dict[str, Any]:
        slots = self.policy.max_concurrency
        headers = dict(self._headers)
        if self._api_key is not None:  # the only place the key leaves its SecretStr
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return {
            "base_url": self.base_url,
            "headers": headers,
            "timeout": self.policy.timeout,
            "limits": httpx.Limits(max_connections=slots, max_keepalive_connections=slots),
        }

    def _sync_client(self) -> httpx.Client:
        with self._sync_lock:
            if self._sync is None:
                self._sync = httpx.Client(**self._client_options(), transport=self._transport)
                # A reranker dropped without close() (a CLI run, a notebook) still closes
                # its sockets when collected, instead of leaving them to the GC's warnings.
                weakref.finalize(self, self._sync.close)
            return self._sync

    async def _async_client(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        for stale in [other for other in self._loops if other.is_closed()]:
            # A loop closed without shutdown_asyncgens (a hand-run loop.close()): its pool can
            # no longer be awaited; drop it so the loop and its sockets can be collected.
            del self._loops[stale]
        pool = self._loops.get(loop)
        if pool is None:
            client = httpx.AsyncClient(**self._client_options(), transport=self._async_transport)
            # asyncio.run (and asyncio.Runner, uvloop, anyio) call loop.shutdown_asyncgens()
            # before closing a loop: it closes every async generator started on the loop, so
            # this one's ``finally`` awaits client.aclose() on the right loop. Without it, each
            # asyncio.run(reranker.arerank(...)) (Flask, Celery) left a client, its open
            # sockets and the dead loop behind.
            closer = _close_with_loop(client, functools.partial(self._loops.pop, loop, None))
            await closer.__anext__()
            pool = _LoopPool(client, asyncio.Semaphore(self.policy.max_concurrency), closer)
            self._loops[loop] = pool
        return pool

    def close(self) -> None:
        """Close the sync connection pool (async pools: ``aclose`` on their loop)."""
        with self._sync_lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None

    async def aclose(self) -> None:
        """Close the current loop's async pool and the sync pool."""
        pool = self._loops.get(asyncio.get_running_loop())
        if pool is not None:
            await pool.closer.aclose()  # pops the pool and closes its client
        self.close()

    # ---- one attempt -----------------------------------------------------------------------
    def error(self, status: int | None, body: str = "", reason: str = "") -> RemoteServiceError:
        """The ``RemoteServiceError`` for a failure, with the key cut out of body and reason."""
        excerpt = redact(body, self._api_key)[:EXCERPT_CHARS]
        return RemoteServiceError(
            self.service, status, excerpt, reason=redact(reason, self._api_key)
        )

    def _transport_error(
        self, error: httpx.TransportError, path: str
    ) -> _Retryable | RemoteServiceError:
        if isinstance(error, httpx.TimeoutException):
            detail = f"no answer within {self.policy.timeout:g} s"
        else:
            detail = str(error)
        failure = self.error(None, reason=f"POST {path}: {type(error).__name__}: {detail}")
        # A request httpx/h11 refused to write (an illegal header) or cannot send (an
        # unsupported scheme) fails the same way every time: raised, not retried.
        if isinstance(error, (httpx.LocalProtocolError, httpx.UnsupportedProtocol)):
            return failure
        return _Retryable(failure)

    def _decode(self, response: httpx.Response, path: str) -> Any:
        status = response.status_code
        if status in (408, 429) or 500 <= status <= 599:  # timeout, rate limit, server error
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > self.policy.max_retry_after:
                raise self.error(
                    status,
                    response.text,
                    reason=f"POST {path}: Retry-After {wait:g} s exceeds "
                    f"max_retry_after={self.policy.max_retry_after:g} s",
                )
            raise _Retryable(self.error(status, response.text, reason=f"POST {path}"), wait)
        if status >= 400:
            raise self.error(status, response.text, reason=f"POST {path}")
        try:
            return json.loads(response.content)
        except ValueError as bad:
            raise self.error(
                status, response.text, reason=f"POST {path}: invalid JSON: {bad}"
            ) from None

    # ---- retried requests ------------------------------------------------------------------
    def _retrying(self, path: str) -> dict[str, Any]:
        options = self.policy.retrying(logger, logging.WARNING, f"{self.service} POST {path}")
        # What is retryable is decided here, from the HTTP answer (not by policy.retry_on).
        return {**options, "retry": tenacity.retry_if_exception_type(_Retryable)}

    def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST ``body`` as JSON to ``path``; the decoded answer, retried per the policy.

        Raises:
            RemoteServiceError: The last attempt failed, or the answer is not retryable.
        """
        client = self._sync_client()

        def attempt() -> Any:
            with self._sync_slots:
                try:
                    response = client.post(path, json=body)
                except httpx.TransportError as error:
                    raise self._transport_error(error, path) from None
            return self._decode(response, path)

        try:
            return tenacity.Retrying(**self._retrying(path))(attempt)
        except _Retryable as final:
            raise final.error from None

    async def apost_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """Async ``post_json`` on the running loop's pool."""
        client, slots, _ = await self._async_client()

        async def attempt() -> Any:
            async with slots:
                try:
                    response = await client.post(path, json=body)
                except httpx.TransportError as error:
                    raise self._transport_error(error, path) from None
            return self._decode(response, path)

        try:
            return await tenacity.AsyncRetrying(**self._retrying(path))(attempt)
        except _Retryable as final:
            raise final.error from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(service={self.service!r}, base_url={self.base_url!r})"


def check_base_url(base_url: Any) -> str:
    """``base_url`` without a trailing slash; it must be ``http(s)://host...`` and carry no
    credentials (pass ``api_key`` instead, so they never show in messages).

    Example:
        >>> check_base_url("http://127.0.0.1:8080/")
        'http://127.0.0.1:8080'
    """
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    url = httpx.URL(base_url.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must look like http(s)://host[:port][/prefix], got {base_url!r}"
        )
    if url.userinfo:
        raise ValueError("base_url must not carry credentials (user:password@); pass api_key")
    return str(url).rstrip("/")
