"""One retry policy for every call rerankkit sends out: rerank services and LLMs.

:class:`RetryPolicy` is configuration (a frozen pydantic model); :meth:`RetryPolicy.retrying`
turns it into tenacity's arguments, declared rather than written as a loop:

* stop after ``max_retries + 1`` attempts, then raise the last error itself (``reraise``);
* retry only an ``Exception`` that ``retry_on`` calls transient (never a cancellation);
* wait the ``retry_after`` seconds an error carries (a service's ``Retry-After``), at most
  ``max_retry_after``; otherwise exponential backoff with full jitter: the n-th retry waits a
  random time in ``[0, min(max_backoff, backoff * 2**(n-1))]``;
* log one line before each wait (``"<what> failed (<error>); retry 1 of 3 in 0.42 s"``).

The timeout of each attempt and the concurrency bound are the caller's to apply (an HTTP
client's timeouts, ``asyncio.wait_for``; a semaphore); they live here so that one object
says how a service or an LLM is called.

Example:
    >>> import logging, tenacity
    >>> policy = RetryPolicy(max_retries=2, backoff=0)
    >>> attempts = []
    >>> def flaky():
    ...     attempts.append(1)
    ...     if len(attempts) < 3:
    ...         raise TimeoutError("slow")
    ...     return "ok"
    >>> tenacity.Retrying(**policy.retrying(logging.getLogger("demo"), logging.INFO, "demo"))(flaky)
    'ok'
    >>> len(attempts)
    3
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import tenacity
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rerankkit._renamed import refuse_renamed_arguments
from rerankkit.errors import TransientLLMError

# HTTP statuses that mean "try again later" for every major provider SDK (their errors carry
# ``status_code``); rerankkit never imports those SDKs, so this is checked structurally.
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_RETRYABLE_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "InternalServerError",
        "RateLimitError",
        "ServiceUnavailableError",
        "Timeout",
        "TimeoutException",
        "ConnectError",
        "ReadTimeout",
    }
)


def is_transient(error: BaseException) -> bool:
    """The default ``retry_on``: timeouts, connection errors, rate limits and 5xx answers.

    Example:
        >>> is_transient(TimeoutError()), is_transient(ValueError("bad prompt"))
        (True, False)
    """
    # asyncio.TimeoutError is a separate class before Python 3.11
    if isinstance(error, (TimeoutError, asyncio.TimeoutError, ConnectionError, TransientLLMError)):
        return True
    if getattr(error, "status_code", None) in _RETRYABLE_STATUS:
        return True
    return any(cls.__name__ in _RETRYABLE_NAMES for cls in type(error).__mro__)


class RetryPolicy(BaseModel):
    """How each call to a rerank service or an LLM is sent: timeout, retries, concurrency.

    Remote rerankers and LLM rerankers build one from their keyword arguments (``timeout``,
    ``max_retries``, ``backoff``, ...), so the spellings and bounds are the same everywhere.

    Raises:
        pydantic.ValidationError: A ``ValueError`` naming the field that is out of range
            (``timeout <= 0``, ``max_retries < 0``, ``max_concurrency < 1``, ...) or of the
            wrong type; ``TypeError`` for the old spelling ``max_in_flight``.

    Example:
        >>> RetryPolicy(timeout=5, max_retries=1).timeout
        5.0
        >>> RetryPolicy(max_in_flight=2)
        Traceback (most recent call last):
        TypeError: RetryPolicy: max_in_flight was renamed max_concurrency
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    timeout: float | None = Field(default=30.0, gt=0, allow_inf_nan=False)
    """Seconds one attempt may take (HTTP: each connect, read, write and pool wait; an LLM
    call: the whole call); ``None``: no limit."""
    max_retries: int = Field(default=3, ge=0)
    """Attempts after the first, for failures ``retry_on`` calls transient."""
    backoff: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    """Seconds: the n-th retry waits a random time up to ``backoff * 2**(n-1)`` (full jitter)."""
    max_backoff: float = Field(default=20.0, ge=0, allow_inf_nan=False)
    """Seconds: the cap of one backoff wait."""
    max_retry_after: float = Field(default=60.0, ge=0, allow_inf_nan=False)
    """Seconds: the longest ``Retry-After`` a service may ask for (a remote client fails at
    once on a longer one)."""
    max_concurrency: int = Field(default=8, ge=1)
    """Calls in flight at once."""
    retry_on: Callable[[BaseException], bool] = is_transient
    """Whether a failed attempt is worth sending again (default :func:`is_transient`)."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_old_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            refuse_renamed_arguments(
                data, {"max_in_flight": "max_concurrency"}, where="RetryPolicy"
            )
        return data

    def retrying(self, logger: logging.Logger, level: int, what: str) -> dict[str, Any]:
        """Keyword arguments of ``tenacity.Retrying``/``AsyncRetrying`` for this policy.

        Args:
            logger, level: Where each retry is logged, one line before its wait.
            what: The call, as the log line names it (``"cohere POST /v2/rerank"``).
        """
        jitter = tenacity.wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)

        def wait(state: tenacity.RetryCallState) -> float:
            retry_after = getattr(_error(state), "retry_after", None)
            if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
                return min(float(retry_after), self.max_retry_after)
            return float(jitter(state))

        def log(state: tenacity.RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            logger.log(
                level,
                "%s failed (%r); retry %d of %d in %.2f s",
                what,
                _error(state),
                state.attempt_number,
                self.max_retries,
                delay,
            )

        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(
                lambda error: isinstance(error, Exception) and self.retry_on(error)
            ),
            "before_sleep": log,
            "reraise": True,
        }


def _error(state: tenacity.RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None
