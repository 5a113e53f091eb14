"""Calling an LLM reliably: concurrency bound, timeout per attempt, retries (tenacity).

How is one :class:`rerankkit.RetryPolicy`, the type the remote clients use too. One async code
path serves both entry points. ``arerank`` awaits it on the caller's loop and uses the LLM's
native ``acomplete`` when it has one. Sync ``rerank`` runs it on a private loop and sends
every ``complete`` call to a thread pool of ``max_concurrency`` workers, so a sync LLM client
is only ever used from threads, never from a foreign event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import tenacity

from rerankkit._retry import RetryPolicy
from rerankkit.llm._protocol import Completion, CompletionLLM, has_native_async, to_completion

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def _attempt(
    llm: CompletionLLM, prompt: str, policy: RetryPolicy, executor: ThreadPoolExecutor | None
) -> Completion:
    if executor is None:
        call = llm.acomplete(prompt)  # type: ignore[attr-defined]
    else:
        # run_in_executor does not carry context variables into the worker thread (to_thread
        # does): copy them, so the LLM's own tracing (LangChain run config, LlamaIndex span)
        # nests under the caller's.
        run = functools.partial(contextvars.copy_context().run, llm.complete, prompt)
        call = asyncio.get_running_loop().run_in_executor(executor, run)
    try:
        return to_completion(await asyncio.wait_for(call, policy.timeout))
    except asyncio.TimeoutError as error:  # a separate class before Python 3.11
        if str(error):
            raise
        raise TimeoutError(f"LLM call exceeded timeout={policy.timeout}s") from None


async def call_with_retries(
    llm: CompletionLLM, prompt: str, policy: RetryPolicy, executor: ThreadPoolExecutor | None
) -> Completion:
    """One completion with timeout and retries; ``executor=None`` uses native ``acomplete``.

    Raises:
        Exception: The last error once retries are exhausted or the error is not transient.
            A timed-out attempt raises ``TimeoutError``.
    """
    retrying = tenacity.AsyncRetrying(**policy.retrying(logger, logging.INFO, "LLM call"))
    return await retrying(_attempt, llm, prompt, policy, executor)


async def complete_all(
    llm: CompletionLLM, prompts: Sequence[str], policy: RetryPolicy, *, use_async: bool
) -> list[Completion | Exception]:
    """Complete every prompt with at most ``policy.max_concurrency`` in flight.

    Returns one entry per prompt, in order: the ``Completion`` or the final error. Never raises
    for a failing call, so the caller decides what a failure means for its document.
    """
    semaphore = asyncio.Semaphore(policy.max_concurrency)

    async def one(prompt: str, executor: ThreadPoolExecutor | None) -> Completion | Exception:
        async with semaphore:
            try:
                return await call_with_retries(llm, prompt, policy, executor)
            except Exception as error:  # reported per document by the caller
                return error

    with sync_calls(llm, policy.max_concurrency, use_async=use_async) as executor:
        return list(await asyncio.gather(*(one(p, executor) for p in prompts)))


@contextmanager
def sync_calls(
    llm: CompletionLLM, workers: int, *, use_async: bool
) -> Iterator[ThreadPoolExecutor | None]:
    """The bounded thread pool that runs sync ``complete`` calls, shut down on exit; ``None``
    when ``use_async`` and the LLM has a native ``acomplete``."""
    if use_async and has_native_async(llm):
        yield None
        return
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rerankkit-llm")
    try:
        yield executor
    finally:
        # A timed-out sync call cannot be interrupted; do not make the caller wait for it.
        executor.shutdown(wait=False, cancel_futures=True)


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    context = contextvars.copy_context()  # the caller's tracing context, as in _attempt
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerankkit-loop") as pool:
        return pool.submit(context.run, lambda: asyncio.run(make())).result()
