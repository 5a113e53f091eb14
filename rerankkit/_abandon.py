"""Model work nobody waits for stops at its next model batch.

Cancelling an asyncio caller (an HTTP client that went away, a server-side deadline) cannot
stop a forward pass already running in a worker thread. The thread's context carries a check
instead (a ``contextvars`` variable, copied into ``asyncio.to_thread`` threads); the one loop
that runs forward passes (``rerankkit.backends._hf.run_batched``) calls
:func:`stop_if_abandoned` before each batch, so at most one model batch of work is wasted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_ABANDONED: ContextVar[Callable[[], bool] | None] = ContextVar("rerankkit_abandoned", default=None)


class AbandonedError(Exception):
    """The caller of this model work went away: the rest of it is skipped."""


def stop_if_abandoned() -> None:
    """Raise :class:`AbandonedError` when the current work's caller has gone.

    Example:
        >>> with abandoned_when(lambda: True):
        ...     stop_if_abandoned()
        Traceback (most recent call last):
        rerankkit._abandon.AbandonedError: the caller went away; the remaining batches are skipped
        >>> stop_if_abandoned()  # outside any abandonable work: nothing happens
    """
    check = _ABANDONED.get()
    if check is not None and check():
        raise AbandonedError("the caller went away; the remaining batches are skipped")


@contextmanager
def abandoned_when(check: Callable[[], bool]) -> Iterator[None]:
    """Within the block (and threads started from it), work stops once ``check()`` is true."""
    token = _ABANDONED.set(check)
    try:
        yield
    finally:
        _ABANDONED.reset(token)


async def in_thread(function: Callable[..., T], *args: object) -> T:
    """``await asyncio.to_thread(function, *args)``; cancelling the caller also stops the
    thread's model work at its next batch (see the module docstring)."""
    gone = threading.Event()
    with abandoned_when(gone.is_set):
        try:
            return await asyncio.to_thread(function, *args)
        except asyncio.CancelledError:
            gone.set()
            raise
