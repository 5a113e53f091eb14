"""Run an app on a real loopback socket in a background thread: for tests (yours and ours),
notebooks and benchmarks that need a live server without a subprocess."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from rerankkit.serve._server import server_config
from rerankkit.serve._settings import ServeSettings


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of ``host``; yields the base URL.

    The socket is bound before the server starts (port 0: the OS picks a free one), so there
    is no race for the port. On exit the server finishes the requests in progress, runs the
    app's shutdown (a ``create_app`` app closes its batcher) and the thread is joined.

    Args:
        app: An ASGI app, e.g. from :func:`rerankkit.serve.create_app`.
        host: Address to bind (default loopback only).
        timeout_s: Longest wait, in seconds, for the server to start and to stop.

    Raises:
        RuntimeError: The server did not start within ``timeout_s``.

    Example:
        >>> import httpx
        >>> from rerankkit.serve import create_app
        >>> from rerankkit.testing import KeywordReranker
        >>> with serve_in_thread(create_app(KeywordReranker())) as url:
        ...     httpx.get(f"{url}/health").json()["status"]
        'ok'
    """
    sock = socket.create_server((host, 0))
    port = sock.getsockname()[1]
    settings = getattr(getattr(app, "state", None), "settings", None)
    if isinstance(settings, ServeSettings):  # a create_app app: its connection limits too
        config = server_config(app, settings, access_log=False)
    else:
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="rerankkit-serve", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {host}:{port} did not start")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
