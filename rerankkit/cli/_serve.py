"""``rerankkit serve SPEC``: one reranker behind the Cohere, Jina, TEI and Infinity rerank APIs.

Example (from the project root, with the test models beside it)::

    rerankkit serve cross-encoder:../shared/models/minilm-l6-msmarco-ce --port 8000
    curl -s localhost:8000/v2/rerank -H 'content-type: application/json' \\
        -d '{"model": "m", "query": "capital of France", "documents": ["Berlin", "Paris"]}'

The server runs on uvicorn (one process; the model is loaded once), or with ``--ray`` on Ray
Serve replicas (``rerankkit/cli/_ray_serve.py``). It listens on 127.0.0.1
unless ``--host`` says otherwise: put it behind your own proxy, or set ``--api-key``, before
exposing it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

API_KEY_ENV = "RERANKKIT_API_KEY"


def _tcp_port(text: str) -> int:
    # uvicorn would take 99999 without a word and fail on -1 with a resolver error
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port (0-65535), got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (0-65535), got {value}")
    return value


def add_parser(commands: Any) -> None:
    """Register ``serve`` on the ``rerankkit`` command's subparsers."""
    from rerankkit.cli._commands import _positive_int
    from rerankkit.serve._settings import ServeSettings

    defaults = ServeSettings()
    serve = commands.add_parser(
        "serve",
        help="serve a reranker over HTTP (Cohere v2/v1, Jina, TEI and Infinity APIs)",
        description="Serve one reranker over HTTP: POST /v2/rerank (Cohere v2), /v1/rerank "
        "(Cohere v1 and Jina), /rerank (TEI and Infinity); GET /health, /metrics "
        "(Prometheus), /docs (OpenAPI). Concurrent requests are merged into shared model "
        "calls unless --no-batching.",
    )
    serve.add_argument("spec", metavar="SPEC", help="reranker spec, e.g. cross-encoder:PATH")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_tcp_port, default=8000, help="TCP port, 0-65535 (default: 8000)"
    )
    serve.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"require 'Authorization: Bearer KEY' on rerank routes (default: ${API_KEY_ENV}; "
        "the environment keeps the key out of the process list)",
    )
    serve.add_argument(
        "--model-name", default=None, help="name reported in responses (default: from SPEC)"
    )
    for flag, default, text in (
        ("--max-documents", defaults.max_documents, "documents per request; more answers 413"),
        (
            "--max-document-chars",
            defaults.max_document_chars,
            "characters per document; more answers 413",
        ),
        ("--max-query-chars", defaults.max_query_chars, "characters per query; more answers 413"),
        (
            "--max-queue",
            defaults.max_queue,
            "rerank requests in progress at once; one more answers 503 with Retry-After",
        ),
        ("--max-batch-pairs", defaults.max_batch_pairs, "pairs per merged model call"),
    ):
        serve.add_argument(flag, type=_positive_int, default=default, help=f"{text} ({default})")
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help=f"longest wait of a request for others to merge with ({defaults.max_wait_ms:g})",
    )
    serve.add_argument(
        "--no-batching",
        action="store_true",
        help="score each request on its own (no cross-request micro-batching)",
    )
    ray = serve.add_argument_group(
        "Ray Serve", "scale out: the same app on several replicas (pip install 'rerankkit[ray]')"
    )
    ray.add_argument(
        "--ray",
        action="store_true",
        help="serve on Ray Serve (a local Ray, or the cluster RAY_ADDRESS names)",
    )
    ray.add_argument(
        "--replicas",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --ray: N replicas (default 1)",
    )
    ray.add_argument(
        "--min-replicas",
        type=int,
        default=None,
        metavar="N",
        help="with --ray: autoscale from N replicas",
    )
    ray.add_argument(
        "--max-replicas",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --ray: autoscale up to N replicas",
    )
    ray.add_argument(
        "--replica-cpus", type=float, default=None, metavar="C", help="with --ray: CPUs per replica"
    )
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Build the reranker from ``args.spec`` and serve it until interrupted."""
    from rerankkit._optional import require
    from rerankkit._specs import build_reranker, parse_spec

    uvicorn = require("uvicorn", "serve")
    require("fastapi", "serve")
    require("prometheus_client", "serve")
    from rerankkit.serve._app import create_app
    from rerankkit.serve._settings import ServeSettings

    spec = parse_spec(args.spec)  # a bad spec fails before anything loads
    settings = ServeSettings(
        model_name=args.model_name or spec.label,
        api_key=args.api_key or None,
        max_documents=args.max_documents,
        max_document_chars=args.max_document_chars,
        max_query_chars=args.max_query_chars,
        max_queue=args.max_queue,
        batching=not args.no_batching,
        max_batch_pairs=args.max_batch_pairs,
        max_wait_ms=args.max_wait_ms,
    )
    from rerankkit.cli._ray_serve import run_ray_serve, uses_ray

    if uses_ray(args):
        return run_ray_serve(args, spec, settings)
    app = create_app(build_reranker(spec), settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


__all__ = ["API_KEY_ENV", "add_parser", "run_serve"]
