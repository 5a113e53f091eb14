"""The ASGI guard in front of the rerank routes: what uvicorn and Starlette leave to the app.

For each ``POST`` to a rerank route, before anything is parsed:

0. the header bytes (any route): 431 past ``max_header_bytes`` (uvicorn's h11 limit only
   applies to headers that arrive in pieces);
1. the API key: 401 before a byte of the body is read;
2. the body size: 413 from ``Content-Length`` without reading, or as soon as a body sent in
   chunks passes ``max_body_bytes``;
3. the time to receive the body: 408 after ``read_timeout_s``;
4. once the body is in, the client's disconnect: the route's task is cancelled, which takes
   its request out of the batcher's queue or stops its model call at the next batch
   (:mod:`rerankkit._abandon`), and is counted in ``rerankkit_abandoned_requests_total``.

Why hand-written: Starlette reads a body of any size (it has no limit setting) and runs a
handler to its end after the client has gone (it only reports the disconnect through
``receive``); FastAPI's security dependencies run after the body is parsed; uvicorn has
neither a body limit nor a body timeout (its own knobs, used by :mod:`._server`, cover the
headers, idle connections, the connection count and shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rerankkit.serve._metrics import ServeMetrics
from rerankkit.serve._schemas import ErrorBody
from rerankkit.serve._settings import ServeSettings

GUARDED = ("/v2/rerank", "/v1/rerank", "/rerank")
UNAUTHORIZED = "missing or wrong API key: send the header 'Authorization: Bearer <key>'"


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Every error's body: ``{"error", "error_type", "message"}`` (TEI's and Cohere's)."""
    body = ErrorBody(error=message, error_type=error_type, message=message)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def key_matches(authorization: str | None, key: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <key>`` (constant-time compare).

    Example:
        >>> key_matches("Bearer s3cret", "s3cret"), key_matches("Bearer nope", "s3cret")
        (True, False)
        >>> key_matches(None, "s3cret"), key_matches("s3cret", "s3cret")
        (False, False)
    """
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), key.encode("utf-8"))


def header_bytes(scope: Scope) -> int:
    """Bytes of a request's header names and values (as sent, without separators).

    Example:
        >>> header_bytes({"headers": [(b"host", b"x"), (b"x-big", b"a" * 10)]})
        20
    """
    return sum(len(name) + len(value) for name, value in scope.get("headers", ()))


def _declared_length(headers: Headers) -> int:
    """``Content-Length`` as sent (0 when absent or not a number: the read counts anyway)."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused (``_TooLarge``) as soon as it passes ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class Guard:
    """Pure ASGI middleware applying the checks of the module docstring."""

    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and header_bytes(scope) > self.settings.max_header_bytes:
            # h11 bounds only headers that arrive in pieces; this bounds them all
            too_large = error_response(
                431,
                "headers_too_large",
                f"the request headers are larger than max_header_bytes="
                f"{self.settings.max_header_bytes}",
            )
            await too_large(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in GUARDED:
            await self.app(scope, receive, send)
            return
        settings, headers = self.settings, Headers(scope=scope)
        refusal = None
        if settings.api_key is not None and not key_matches(
            headers.get("authorization"), settings.api_key.get_secret_value()
        ):
            refusal = error_response(
                401, "unauthorized", UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}
            )
        elif _declared_length(headers) > settings.max_body_bytes:
            refusal = self._too_large()
        if refusal is None:
            try:
                body = await asyncio.wait_for(
                    read_body(receive, settings.max_body_bytes), settings.read_timeout_s
                )
            except _TooLarge:
                refusal = self._too_large()
            except asyncio.TimeoutError:  # TimeoutError from 3.11; a distinct class on 3.10
                refusal = error_response(
                    408,
                    "request_timeout",
                    f"the request body did not arrive within read_timeout_s="
                    f"{settings.read_timeout_s:g} s",
                )
            except _Gone:
                return
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._run_until_gone(scope, receive, send, body)

    def _too_large(self) -> JSONResponse:
        return error_response(
            413,
            "payload_too_large",
            f"the request body is larger than max_body_bytes={self.settings.max_body_bytes}; "
            "split the request",
        )

    async def _run_until_gone(
        self, scope: Scope, receive: Receive, send: Send, body: bytes
    ) -> None:
        """Run the route with the body read above; cancel it if the client disconnects."""
        gone, answered = asyncio.Event(), False
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def tracked(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def disconnected() -> None:
            # The body is in: the server's receive() now waits until the client goes (or, on
            # uvicorn, until the response is complete).
            while (await receive())["type"] != "http.disconnect":
                pass

        route: asyncio.Task[None] = asyncio.ensure_future(self.app(scope, replay, tracked))
        watcher = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({route, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not route.done() and not answered:
                gone.set()
                route.cancel()
                self.metrics.abandoned.labels(reason="disconnect").inc()
                with contextlib.suppress(asyncio.CancelledError):
                    await route
                return
            await route
        finally:
            watcher.cancel()
            if not route.done():  # the server cancelled us (shutdown): cancel the route too
                route.cancel()
