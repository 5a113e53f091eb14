"""``rerankkit serve``: one reranker behind the HTTP APIs RAG apps already call.

- :func:`create_app`: the FastAPI app (Cohere v2/v1, Jina, TEI and Infinity shapes,
  ``/health``, ``/metrics``, OpenAPI docs at ``/docs``);
- :class:`ServeSettings`: limits, queue bound, API key, batching;
- :func:`serve_in_thread`: runs an app on a free loopback port (tests, notebooks).

Needs the ``serve`` extra (fastapi, uvicorn, prometheus-client); ``create_app`` and
``serve_in_thread`` load it on first use, so ``import rerankkit.serve`` alone imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rerankkit.serve._settings import ServeSettings

if TYPE_CHECKING:
    from rerankkit.serve._app import create_app
    from rerankkit.serve._background import serve_in_thread

__all__ = ["ServeSettings", "create_app", "serve_in_thread"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from rerankkit.serve._app import create_app

        return create_app
    if name == "serve_in_thread":
        from rerankkit.serve._background import serve_in_thread

        return serve_in_thread
    raise AttributeError(f"module 'rerankkit.serve' has no attribute {name!r}")
