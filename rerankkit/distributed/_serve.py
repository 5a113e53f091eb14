"""The ``rerankkit serve`` app on Ray Serve: the same routes, on N replicas or autoscaled.

Each replica builds the reranker once from its spec and serves
:func:`rerankkit.serve.create_app` (Cohere v2/v1, Jina, TEI and Infinity request shapes,
``/health``, ``/metrics``), so clients see one server whatever the replica count; Ray Serve's
proxy spreads requests over the replicas. Ray is imported only when a function here is called
(``pip install "rerankkit[ray]"``).

Command line: ``rerankkit serve SPEC --ray --replicas 4`` (or ``--min-replicas 1
--max-replicas 8`` to autoscale on ongoing requests).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from functools import cache
from typing import Any

from rerankkit._optional import require
from rerankkit._specs import RerankerSpec, build_reranker, parse_spec
from rerankkit._validation import check_instance, check_int
from rerankkit.serve._settings import ServeSettings


class RerankServer:
    """One Ray Serve replica: loads the reranker in its constructor, then serves the app.

    Ray Serve calls ``__serve_build_asgi_app__`` on the replica after the constructor (the
    late-bound form of ``serve.ingress()``), so the model is loaded where it runs and never
    pickled.
    """

    def __init__(self, spec: RerankerSpec, settings: ServeSettings) -> None:
        self.reranker = build_reranker(spec)
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        from rerankkit.serve._app import create_app

        return create_app(self.reranker, self.settings)


@cache
def _ingress_class() -> Any:
    # Built on first use: decorating at import time would import Ray with this module.
    serve = require("ray.serve", "ray")
    return serve.ingress()(RerankServer)


def rerank_deployment(
    spec: str | RerankerSpec,
    settings: ServeSettings | None = None,
    *,
    num_replicas: int | None = None,
    autoscaling_config: Mapping[str, Any] | None = None,
    max_ongoing_requests: int | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    name: str = "rerankkit",
) -> Any:
    """A Ray Serve application serving ``spec`` with the ``rerankkit serve`` routes.

    Run it with ``ray.serve.run(app, route_prefix="/")`` (or ``serve run`` on a config);
    ``rerankkit serve SPEC --ray`` does that for you.

    Args:
        spec: The reranker each replica builds (see :mod:`rerankkit._specs`).
        settings: Limits, queue bound, API key and batching, per replica (default:
            :class:`rerankkit.serve.ServeSettings`, named after the spec).
        num_replicas: A fixed number of replicas (default 1 unless ``autoscaling_config``).
        autoscaling_config: Ray Serve's autoscaling settings, passed through as given
            (``{"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 16}``).
        max_ongoing_requests: Requests one replica handles at once; more wait in Ray Serve's
            queue. Default ``settings.max_queue``, so concurrent requests reach the app's
            micro-batcher together rather than 5 at a time (Ray Serve's own default).
        ray_actor_options: Resources per replica, passed through (``{"num_cpus": 4}``,
            ``{"num_gpus": 1}``).
        name: The deployment's name.

    Returns:
        A bound ``ray.serve.Application``.

    Raises:
        ValueError: A bad spec, both ``num_replicas`` and ``autoscaling_config``, or a count
            below 1, naming the argument.
        TypeError: An argument of the wrong type, naming it.
        MissingExtraError: Ray Serve is not installed (``pip install "rerankkit[ray]"``).

    Example (see ``tests/test_distributed.py``)::

        from ray import serve
        from rerankkit.distributed._serve import rerank_deployment

        serve.run(rerank_deployment("cross-encoder:/models/ce", num_replicas=2))
        # POST http://127.0.0.1:8000/v2/rerank {"query": ..., "documents": [...]}
    """
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if not isinstance(parsed, RerankerSpec):
        raise TypeError(f"spec must be a spec string, got {type(spec).__name__}")
    settings = ServeSettings(model_name=parsed.label) if settings is None else settings
    check_instance(settings, ServeSettings, "settings")
    if num_replicas is not None and autoscaling_config is not None:
        raise ValueError("give num_replicas or autoscaling_config, not both")
    options: dict[str, Any] = {
        "name": name,
        "max_ongoing_requests": check_int(
            settings.max_queue if max_ongoing_requests is None else max_ongoing_requests,
            "max_ongoing_requests",
            minimum=1,
        ),
    }
    if autoscaling_config is not None:
        options["autoscaling_config"] = dict(
            check_instance(autoscaling_config, Mapping, "autoscaling_config")
        )
    else:
        options["num_replicas"] = check_int(
            1 if num_replicas is None else num_replicas, "num_replicas", minimum=1
        )
    if ray_actor_options is not None:
        options["ray_actor_options"] = dict(
            check_instance(ray_actor_options, Mapping, "ray_actor_options")
        )
    serve = require("ray.serve", "ray")
    return serve.deployment(_ingress_class(), **options).bind(parsed, settings)


def run_on_ray(
    app: Any, *, host: str = "127.0.0.1", port: int = 8000, blocking: bool = True
) -> None:
    """Start Ray Serve's HTTP proxy on ``host:port`` and run ``app`` at ``/``.

    Connects to the Ray cluster ``RAY_ADDRESS`` names, else starts a local one. With
    ``blocking`` it serves until interrupted, then shuts Ray Serve down.
    """
    serve = require("ray.serve", "ray")
    serve.start(http_options={"host": host, "port": port})
    if not blocking:
        serve.run(app, name="rerankkit", route_prefix="/", blocking=False)
        return
    # Our own wait rather than serve.run(blocking=True): an interrupt that arrives while Ray is
    # still bringing the app up must end the command too (CI saw one swallowed there).
    # Ray's driver may leave its own SIGINT handler in place; Ctrl-C must raise here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve.run(app, name="rerankkit", route_prefix="/", blocking=False)
        while True:
            time.sleep(1.0)
    finally:
        serve.shutdown()
