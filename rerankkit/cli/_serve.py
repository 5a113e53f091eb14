"""``rerankkit serve --reranker SPEC``: one reranker behind the Cohere, Jina, TEI and Infinity
rerank APIs, on uvicorn or on Ray Serve replicas.

Example (from the project root, with the test models beside it)::

    rerankkit serve --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce --port 8000
    curl -s localhost:8000/v2/rerank -H 'content-type: application/json' \\
        -d '{"model": "m", "query": "capital of France", "documents": ["Berlin", "Paris"]}'
    rerankkit serve --reranker cross-encoder:PATH --ray --min-replicas 1 --max-replicas 8

The server runs on uvicorn (one process; the model is loaded once), or with ``--ray`` on Ray
Serve replicas, each applying the same limits, queue, API key and batching, behind Ray Serve's
HTTP proxy on ``--host``/``--port``. It listens on 127.0.0.1 unless ``--host`` says otherwise:
put it behind your own proxy, or set ``--api-key``, before exposing it. The options come from
:class:`~rerankkit.serve._settings.ServeSettings` and the two models below.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import Field, model_validator

from rerankkit.cli._options import (
    CliError,
    Options,
    add_model_options,
    checked_spec,
    flag,
    model_from_args,
)
from rerankkit.serve._settings import ServeSettings


class _Listen(Options):
    """What to serve and where."""

    reranker: str = Field(json_schema_extra={"metavar": ["SPEC"]})
    """reranker spec, e.g. cross-encoder:PATH"""
    host: str = "127.0.0.1"
    """address to listen on"""
    port: int = Field(8000, ge=0, le=65535)
    """TCP port, 0-65535"""


class _RayServe(Options):
    """Scale out: the same app on Ray Serve replicas.

    Example:
        >>> _RayServe(ray=True, min_replicas=0, max_replicas=4, replica_cpus=2.0).deployment()
        {'autoscaling_config': {'min_replicas': 0, 'max_replicas': 4}, \
'ray_actor_options': {'num_cpus': 2.0}}
        >>> _RayServe(replicas=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        pydantic_core._pydantic_core.ValidationError: 1 validation error for _RayServe
          Value error, --replicas needs --ray ...
    """

    ray: bool = False
    """serve on Ray Serve (a local Ray, or the cluster RAY_ADDRESS names; pip install
    'rerankkit[ray]')"""
    replicas: int | None = Field(None, ge=1)
    """with --ray: N replicas (default 1)"""
    min_replicas: int | None = Field(None, ge=0)
    """with --ray: autoscale from N replicas"""
    max_replicas: int | None = Field(None, ge=1)
    """with --ray: autoscale up to N replicas"""
    replica_cpus: float | None = Field(None, gt=0, allow_inf_nan=False)
    """with --ray: CPUs per replica"""

    @model_validator(mode="after")
    def _fits_together(self) -> _RayServe:
        given = [name for name, value in self if name != "ray" and value is not None]
        if given and not self.ray:  # refused rather than silently ignored
            raise ValueError(f"{flag(given[0])} needs --ray")
        low, high = self.min_replicas, self.max_replicas
        if self.replicas is not None and (low is not None or high is not None):
            raise ValueError("--replicas is a fixed count; it cannot go with --min/--max-replicas")
        if low is not None and high is not None and high < low:
            raise ValueError(f"--min-replicas {low} and --max-replicas {high}: need min <= max")
        return self

    def deployment(self) -> dict[str, Any]:
        """``rerank_deployment`` keyword arguments: the replica count or autoscaling range
        (from 1 and up to the minimum when either end is not given), and the CPUs per replica."""
        options: dict[str, Any] = {}
        if self.min_replicas is not None or self.max_replicas is not None:
            low = 1 if self.min_replicas is None else self.min_replicas
            high = max(low, 1) if self.max_replicas is None else self.max_replicas
            options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high}
        elif self.replicas is not None:
            options["num_replicas"] = self.replicas
        if self.replica_cpus is not None:
            options["ray_actor_options"] = {"num_cpus": self.replica_cpus}
        return options


def add_parser(commands: Any) -> None:
    """Register ``serve`` on the ``rerankkit`` command's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="serve a reranker over HTTP (Cohere v2/v1, Jina, TEI and Infinity APIs)",
        description="Serve one reranker over HTTP: POST /v2/rerank (Cohere v2), /v1/rerank "
        "(Cohere v1 and Jina), /rerank (TEI and Infinity); GET /health, /metrics "
        "(Prometheus), /docs (OpenAPI). Concurrent requests are merged into shared model "
        "calls unless --no-batching.",
    )
    add_model_options(serve, _Listen)
    add_model_options(serve, ServeSettings)
    ray = serve.add_argument_group(
        "Ray Serve", "scale out: the same app on several replicas (pip install 'rerankkit[ray]')"
    )
    add_model_options(ray, _RayServe)
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Build the reranker and serve it until interrupted."""
    from rerankkit._optional import require
    from rerankkit._specs import build_reranker

    listen = model_from_args(_Listen, args)
    spec = checked_spec(listen.reranker)  # a bad spec fails before anything loads
    name = {} if hasattr(args, "model_name") else {"model_name": spec.label}
    settings = model_from_args(ServeSettings, args, **name)
    ray = model_from_args(_RayServe, args)
    require("uvicorn", "serve")
    require("fastapi", "serve")
    require("prometheus_client", "serve")
    if ray.ray:
        from rerankkit.distributed._serve import rerank_deployment, run_on_ray

        app = rerank_deployment(spec, settings, **ray.deployment())
        run_on_ray(app, host=listen.host, port=listen.port)
        return 0
    import logging

    from rerankkit.serve._app import create_app
    from rerankkit.serve._server import bind, is_loopback, logger, run, start_lines

    if not logging.getLogger().handlers:  # the start/stop lines and uvicorn's access log
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    logger.setLevel(logging.INFO)
    try:  # before the model loads: a taken port fails now, not after a minute's load
        sock = bind(listen.host, listen.port)
    except OSError as error:
        raise CliError(
            f"argument --port: cannot listen on {listen.host}:{listen.port}: {error}"
        ) from None
    if not is_loopback(listen.host) and settings.api_key is None:
        logger.warning(
            "listening on %s without an API key: anyone who can reach this address can use "
            "the server; set --api-key or RERANKKIT_API_KEY, or put it behind your own proxy",
            listen.host,
        )
    with sock:
        reranker = build_reranker(spec)
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        path = getattr(reranker, "cpu_path", None)
        banner = start_lines(url, settings.model_name, path, settings)
        try:
            app = create_app(reranker, settings)
        except ValueError as error:  # --min-relevance on an uncalibrated reranker
            raise CliError(f"argument --min-relevance: {error}") from None
        run(app, settings, sock, banner=banner)
    return 0
