"""``rerankkit serve SPEC --ray``: the ``serve`` app on Ray Serve replicas.

Example::

    rerankkit serve cross-encoder:../shared/models/minilm-l6-msmarco-ce --ray --replicas 2
    rerankkit serve cross-encoder:PATH --ray --min-replicas 1 --max-replicas 8 --replica-cpus 4

The ``serve`` flags (limits, queue, API key, batching) apply to each replica; Ray Serve's HTTP
proxy listens on ``--host``/``--port``.
"""

from __future__ import annotations

import argparse
from typing import Any

from rerankkit.cli._commands import CliError

_RAY_ONLY = ("replicas", "min_replicas", "max_replicas", "replica_cpus")


def uses_ray(args: argparse.Namespace) -> bool:
    """``--ray``; a Ray-only flag without it is an error rather than silently ignored.

    Example:
        >>> uses_ray(argparse.Namespace(ray=False, replicas=2))
        Traceback (most recent call last):
        rerankkit.cli._commands.CliError: --replicas needs --ray
    """
    if not args.ray:
        for name in _RAY_ONLY:
            if getattr(args, name, None) is not None:
                raise CliError(f"--{name.replace('_', '-')} needs --ray")
    return bool(args.ray)


def ray_options(args: argparse.Namespace) -> dict[str, Any]:
    """``rerank_deployment`` keyword arguments from the ``--replicas``/autoscaling flags.

    Example:
        >>> ns = argparse.Namespace(replicas=None, min_replicas=0, max_replicas=4, replica_cpus=2.0)
        >>> ray_options(ns)
        {'autoscaling_config': {'min_replicas': 0, 'max_replicas': 4}, \
'ray_actor_options': {'num_cpus': 2.0}}
    """
    options: dict[str, Any] = {}
    autoscale = args.min_replicas is not None or args.max_replicas is not None
    if autoscale and args.replicas is not None:
        raise CliError("--replicas is a fixed count; it cannot go with --min/--max-replicas")
    if autoscale:
        low = 1 if args.min_replicas is None else args.min_replicas
        high = max(low, 1) if args.max_replicas is None else args.max_replicas
        if low < 0 or high < low:
            raise CliError(f"--min-replicas {low} and --max-replicas {high}: need 0 <= min <= max")
        options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high}
    elif args.replicas is not None:
        options["num_replicas"] = args.replicas
    if args.replica_cpus is not None:
        options["ray_actor_options"] = {"num_cpus": args.replica_cpus}
    return options


def run_ray_serve(args: argparse.Namespace, spec: Any, settings: Any) -> int:
    """Deploy ``spec`` on Ray Serve and serve until interrupted."""
    from rerankkit.distributed._serve import rerank_deployment, run_on_ray

    app = rerank_deployment(spec, settings, **ray_options(args))
    run_on_ray(app, host=args.host, port=args.port)
    return 0


__all__ = ["ray_options", "run_ray_serve"]
