"""``rerankkit serve``: one reranker behind the HTTP APIs RAG apps already call.

- ``app``: :func:`create_app` (FastAPI: Cohere v2/v1, Jina, TEI and Infinity shapes,
  ``/health``, ``/metrics``, OpenAPI docs at ``/docs``).
- ``settings``: :class:`ServeSettings` (limits, queue bound, API key, batching).
- ``schemas``: the request and response bodies (pydantic).
- ``wire``: pure conversions between bodies and results, and the request limits.
- ``metrics``: Prometheus metrics in a per-app registry.

Needs the ``serve`` extra (fastapi, uvicorn, prometheus-client).
"""
