"""The settings of a rerank server: limits, the queue bound, authentication, batching."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rerankkit._validation import check_int, check_number


@dataclass(frozen=True)
class ServeSettings:
    """How ``rerankkit serve`` (:func:`rerankkit.serve._app.create_app`) answers requests.

    Attributes:
        model_name: Name reported as ``model`` in responses and on ``/health``. The ``model``
            field of a request is accepted and not checked: one server serves one reranker.
        api_key: When set, rerank routes require ``Authorization: Bearer <api_key>`` and
            answer 401 otherwise; ``/health``, ``/metrics`` and the docs stay open. Never in
            ``repr``.
        max_documents: Most documents per request; more answers 413.
        max_document_chars: Most characters per document; a longer one answers 413 naming
            its position.
        max_query_chars: Most characters in the query; longer answers 413.
        max_queue: Most rerank requests admitted at once (being scored or waiting for the
            model); one more answers 503 with ``Retry-After``.
        retry_after_s: Seconds sent in the ``Retry-After`` header of a 503.
        batching: Merge concurrent requests into shared model calls
            (:class:`rerankkit.compose._batching.BatchingReranker`; pointwise rerankers only).
        max_batch_pairs: Most (query, document) pairs per merged model call.
        max_wait_ms: Longest wait, in milliseconds, of a request for others to merge with.

    Raises:
        TypeError: A count or limit has the wrong type (naming the field).
        ValueError: A count or limit is out of range (naming the field).

    Example:
        >>> ServeSettings(api_key="secret", max_documents=100)
        ServeSettings(model_name='rerankkit', max_documents=100, max_document_chars=20000, \
max_query_chars=4000, max_queue=64, retry_after_s=1, batching=True, max_batch_pairs=512, \
max_wait_ms=5.0)
        >>> ServeSettings(max_queue=0)
        Traceback (most recent call last):
        ValueError: max_queue must be >= 1, got 0
    """

    model_name: str = "rerankkit"
    api_key: str | None = field(default=None, repr=False)
    max_documents: int = 1000
    max_document_chars: int = 20_000
    max_query_chars: int = 4_000
    max_queue: int = 64
    retry_after_s: int = 1
    batching: bool = True
    max_batch_pairs: int = 512
    max_wait_ms: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.model_name, str) or not self.model_name:
            raise TypeError(f"model_name must be a non-empty str, got {self.model_name!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise TypeError("api_key must be a non-empty str or None")
        if not isinstance(self.batching, bool):
            raise TypeError(f"batching must be a bool, got {type(self.batching).__name__}")
        checked: dict[str, Any] = {
            name: check_int(getattr(self, name), name, minimum=minimum)
            for name, minimum in (
                ("max_documents", 1),
                ("max_document_chars", 1),
                ("max_query_chars", 1),
                ("max_queue", 1),
                ("retry_after_s", 0),
                ("max_batch_pairs", 1),
            )
        }
        checked["max_wait_ms"] = check_number(self.max_wait_ms, "max_wait_ms", minimum=0.0)
        for name, value in checked.items():  # plain ints/floats even from numpy values
            object.__setattr__(self, name, value)


__all__ = ["ServeSettings"]
