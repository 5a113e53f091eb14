"""Running an app on uvicorn with the limits of its :class:`ServeSettings`.

uvicorn's own knobs do most of it: h11 with ``h11_max_incomplete_event_size`` (header bytes),
``limit_concurrency`` (connections; it answers 503 and logs "Exceeded concurrency limit"),
``timeout_keep_alive`` (idle connections), ``timeout_graceful_shutdown`` (SIGTERM). Hand-written
here only the header read timeout: uvicorn times out idle keep-alive connections but not a
client that sends its headers slowly (a slow-loris client held a connection forever), so the
h11 protocol below closes a connection whose request headers have not all arrived within
``read_timeout_s``. The body's timeout is the app's (:mod:`._guard`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from rerankkit.serve._settings import ServeSettings

logger = logging.getLogger("rerankkit.serve")


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol that closes a connection whose request headers take longer than
    ``seconds`` (from the connection, or from the previous response on a kept-alive one)."""

    class HeaderTimeoutH11Protocol(H11Protocol):
        _headers_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._headers_timer is not None:
                self._headers_timer.cancel()
            self._headers_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete  # no request in
            if waiting and not self.transport.is_closing():
                logger.info("closed a connection whose request headers took over %g s", seconds)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._headers_timer is not None:
                self._headers_timer.cancel()
            super().connection_lost(exc)

    return HeaderTimeoutH11Protocol


def server_config(app: Any, settings: ServeSettings, *, access_log: bool = True) -> uvicorn.Config:
    """The uvicorn configuration that applies ``settings``' connection-level limits."""
    return uvicorn.Config(
        app,
        http=header_timeout_protocol(settings.read_timeout_s),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        lifespan="on",
        log_level="info" if access_log else "warning",
        access_log=access_log,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (IPv6 when ``host`` holds a colon), bound before
    the model loads so a taken port fails in a second, not after the load.

    Raises:
        OSError: The address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=False)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    return host in ("localhost", "::1") or host.startswith("127.")


def start_lines(url: str, model: str, path: str | None, settings: ServeSettings) -> list[str]:
    """What the server logs when it starts: where, what, and its limits.

    Example:
        >>> for line in start_lines("http://127.0.0.1:8000", "ce", "torch-float32",
        ...                         ServeSettings(api_key=None)):
        ...     print(line)  # doctest: +NORMALIZE_WHITESPACE
        serving ce (cpu_path torch-float32) on http://127.0.0.1:8000 (docs at /docs)
        limits: 1000 documents, 20000 characters per document, 2000000 body bytes, 16384
        header bytes; queue 64 requests / 4096 pairs; deadline 30 s; read timeout 10 s; 512
        connections; shutdown within 10 s; batching on (512 pairs, 5 ms); API key off;
        CORS off
    """
    lines = [
        f"serving {model} (cpu_path {path or 'n/a'}) on {url} (docs at /docs)",
        f"limits: {settings.max_documents} documents, {settings.max_document_chars} characters "
        f"per document, {settings.max_body_bytes} body bytes, {settings.max_header_bytes} header "
        f"bytes; queue {settings.max_queue} requests / {settings.max_queue_pairs} pairs; "
        f"deadline {settings.request_timeout_s:g} s; read timeout {settings.read_timeout_s:g} s; "
        f"{settings.max_connections} connections; shutdown within "
        f"{settings.shutdown_timeout_s} s; batching "
        + (
            f"on ({settings.max_batch_pairs} pairs, {settings.max_wait_ms:g} ms)"
            if settings.batching
            else "off"
        )
        + f"; API key {'on' if settings.api_key is not None else 'off'}; CORS "
        + (", ".join(settings.cors_origin) if settings.cors_origin else "off"),
    ]
    return lines


def run(app: Any, settings: ServeSettings, sock: socket.socket, *, banner: list[str]) -> None:
    """Serve ``app`` on the bound ``sock`` until SIGTERM/SIGINT, logging ``banner`` first (a
    ``create_app`` app logs its stop line when it shuts down)."""
    server = uvicorn.Server(server_config(app, settings))
    for line in banner:
        logger.info("%s", line)
    server.run(sockets=[sock])
