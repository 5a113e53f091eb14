"""Prometheus metrics of one server, in its own registry (several apps in one process, e.g.
tests or Ray Serve replicas, never share or clash)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds; a rerank request on CPU takes milliseconds (cached, tiny) to seconds (100 long
# documents through a cross-encoder), so the buckets span both.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServeMetrics:
    """The server's counters, histogram and gauges.

    Metrics (names as exposed):

    - ``rerankkit_requests_total{route,status}``: answered HTTP requests.
    - ``rerankkit_request_duration_seconds{route}``: time to answer (histogram).
    - ``rerankkit_documents_total{route}``: documents received in accepted rerank requests.
    - ``rerankkit_abandoned_requests_total{reason}``: admitted requests whose work was
      dropped: ``disconnect`` (the client went away) or ``deadline`` (answered 504).
    - ``rerankkit_queue_depth``: rerank requests admitted and not yet answered.
    - ``rerankkit_queue_pairs``: their (query, document) pairs.
    - ``rerankkit_throughput_pairs_per_second``: measured pairs scored per busy second (what
      admission and Retry-After estimate from; 0 before the first request).
    - ``rerankkit_batch_queue_pairs``: pairs waiting for a merged model call (0 without
      batching).
    - ``rerankkit_model_calls``: merged model calls made so far (0 without batching).
    - ``rerankkit_batch_abandoned_requests``: requests the batcher dropped from its queue or
      stopped mid-call because their caller went away (0 without batching).

    Args:
        queue_depth: Reads the number of admitted requests.
        queue_pairs: Reads their pairs.
        pairs_per_s: Reads the measured throughput.
        queued_pairs: Reads the pairs waiting in the batcher.
        model_calls: Reads the batcher's merged call count.
        batch_abandoned: Reads the batcher's abandoned count.
    """

    def __init__(
        self,
        queue_depth: Callable[[], float],
        queue_pairs: Callable[[], float],
        pairs_per_s: Callable[[], float],
        queued_pairs: Callable[[], float],
        model_calls: Callable[[], float],
        batch_abandoned: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "rerankkit_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rerankkit_request_duration_seconds",
            "Time to answer a request, in seconds",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.documents = Counter(
            "rerankkit_documents",
            "Documents received in accepted rerank requests",
            ["route"],
            registry=self.registry,
        )
        self.abandoned = Counter(
            "rerankkit_abandoned_requests",
            "Admitted requests whose work was dropped, by reason (disconnect, deadline)",
            ["reason"],
            registry=self.registry,
        )
        for name, text, read in (
            ("rerankkit_queue_depth", "Rerank requests admitted and not yet answered", queue_depth),
            ("rerankkit_queue_pairs", "Pairs of the admitted rerank requests", queue_pairs),
            (
                "rerankkit_throughput_pairs_per_second",
                "Measured pairs scored per busy second",
                pairs_per_s,
            ),
            ("rerankkit_batch_queue_pairs", "Pairs waiting for a merged model call", queued_pairs),
            ("rerankkit_model_calls", "Merged model calls made by the batcher", model_calls),
            (
                "rerankkit_batch_abandoned_requests",
                "Requests the batcher dropped or stopped because their caller went away",
                batch_abandoned,
            ),
        ):
            Gauge(name, text, registry=self.registry).set_function(read)

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
