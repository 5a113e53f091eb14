"""Calling an LLM reliably: concurrency limit, per-call timeout, retries with backoff.

One async code path serves both entry points. ``arerank`` awaits it on the caller's loop and
uses the LLM's native ``acomplete`` when it has one. Sync ``rerank`` runs it on a private loop
and sends every ``complete`` call to a thread pool of ``max_concurrency`` workers, so a sync
LLM client is only ever used from threads, never from a foreign event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from rerankkit._validation import check_int, check_number
from rerankkit.errors import TransientLLMError
from rerankkit.llm._protocol import Completion, CompletionLLM, has_native_async, to_completion

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
    """Default retry predicate: timeouts, connection errors, rate limits and 5xx answers.

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


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How each LLM call is run.

    Attributes:
        max_concurrency: Calls in flight at once (>= 1).
        timeout: Seconds per attempt; ``None`` waits forever.
        max_retries: Extra attempts after a transient failure (>= 0).
        backoff: First retry delay in seconds; doubles per retry, with jitter.
        retry_on: Predicate deciding whether an error is transient.
    """

    max_concurrency: int = 8
    timeout: float | None = 60.0
    max_retries: int = 2
    backoff: float = 0.5
    retry_on: Callable[[BaseException], bool] = is_transient

    def __post_init__(self) -> None:
        checked = {
            "max_concurrency": check_int(self.max_concurrency, "max_concurrency", minimum=1),
            "timeout": check_number(self.timeout, "timeout", optional=True),
            "max_retries": check_int(self.max_retries, "max_retries", minimum=0),
            "backoff": check_number(self.backoff, "backoff", minimum=0),
        }
        if checked["timeout"] is not None and checked["timeout"] <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {self.timeout}")
        for name, value in checked.items():  # plain int/float, whatever numeric type came in
            object.__setattr__(self, name, value)
        if not callable(self.retry_on):
            raise TypeError("retry_on must be a callable error -> bool")


def backoff_delay(policy: CallPolicy, retry: int) -> float:
    """Delay before retry ``retry`` (0-based): exponential, jittered, capped at 30s."""
    return min(30.0, policy.backoff * (2**retry)) * random.uniform(0.5, 1.0)


async def _attempt(
    llm: CompletionLLM, prompt: str, executor: ThreadPoolExecutor | None
) -> Completion:
    if executor is None:
        return to_completion(await llm.acomplete(prompt))  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    # run_in_executor does not carry context variables into the worker thread (to_thread
    # does): copy them, so the LLM's own tracing (LangChain run config, LlamaIndex span)
    # nests under the caller's.
    call = functools.partial(contextvars.copy_context().run, llm.complete, prompt)
    return to_completion(await loop.run_in_executor(executor, call))


async def call_with_retries(
    llm: CompletionLLM, prompt: str, policy: CallPolicy, executor: ThreadPoolExecutor | None
) -> Completion:
    """One completion with timeout and retries; ``executor=None`` uses native ``acomplete``.

    Raises:
        Exception: the last error once retries are exhausted or the error is not transient.
            A timed-out attempt raises ``TimeoutError``.
    """
    for retry in range(policy.max_retries + 1):
        try:
            return await asyncio.wait_for(_attempt(llm, prompt, executor), policy.timeout)
        except Exception as error:
            if isinstance(error, asyncio.TimeoutError) and not str(error):
                error = TimeoutError(f"LLM call exceeded timeout={policy.timeout}s")
            if retry == policy.max_retries or not policy.retry_on(error):
                raise error from None
            delay = backoff_delay(policy, retry)
            logger.info("transient LLM error (%r); retry %d in %.2fs", error, retry + 1, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def complete_all(
    llm: CompletionLLM, prompts: Sequence[str], policy: CallPolicy, *, use_async: bool
) -> list[Completion | Exception]:
    """Complete every prompt with at most ``policy.max_concurrency`` in flight.

    Returns one entry per prompt, in order: the ``Completion`` or the final error. Never raises
    for a failing call, so the caller decides what a failure means for its document.
    """
    native = use_async and has_native_async(llm)
    executor = None if native else make_executor(policy.max_concurrency)
    semaphore = asyncio.Semaphore(policy.max_concurrency)

    async def one(prompt: str) -> Completion | Exception:
        async with semaphore:
            try:
                return await call_with_retries(llm, prompt, policy, executor)
            except Exception as error:  # reported per document by the caller
                return error

    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        if executor is not None:
            # A timed-out sync call cannot be interrupted; do not make the caller wait for it.
            executor.shutdown(wait=False, cancel_futures=True)


def make_executor(workers: int) -> ThreadPoolExecutor:
    """The thread pool that runs sync ``complete`` calls (bounded: this is the sync limit)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rerankkit-llm")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(make))
    context = contextvars.copy_context()  # the caller's tracing context, as in _attempt
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerankkit-loop") as pool:
        return pool.submit(context.run, lambda: asyncio.run(_as_coroutine(make))).result()


async def _as_coroutine(make: Callable[[], Awaitable[T]]) -> T:
    return await make()
