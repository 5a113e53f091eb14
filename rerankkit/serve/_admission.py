"""Admission: how much work the server holds, how fast it scores, and when to say "later".

The queue is bounded by (query, document) pairs, the unit of model work, as well as by
requests: ten 100-document requests weigh what a hundred 10-document ones do. Throughput is
measured, not configured (pairs scored per second of busy time, recent work weighing most),
so a request is refused up front when the work already admitted would keep it past its
deadline, and every refusal says when to retry: the time for the queue to drain enough.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

FORGET_AFTER_S = 60.0
"""Busy seconds after which the measured throughput halves its memory (recent work counts)."""


def retry_after(excess_pairs: float, pairs_per_s: float | None, minimum: int) -> int:
    """Whole seconds until ``excess_pairs`` of queued work are scored (at least ``minimum``;
    ``minimum`` itself while no throughput has been measured).

    Example:
        >>> retry_after(900, 300.0, 1), retry_after(30, 300.0, 1), retry_after(900, None, 2)
        (3, 1, 2)
    """
    if pairs_per_s is None or pairs_per_s <= 0:
        return minimum
    return max(minimum, math.ceil(excess_pairs / pairs_per_s))


@dataclass
class Refusal:
    """Why a request is not admitted, and the ``Retry-After`` seconds to send with the 503."""

    reason: str
    retry_after_s: int


class LoadMeter:
    """Admitted requests and pairs, and the measured throughput (event-loop thread only).

    Args:
        max_requests: Most requests admitted at once.
        max_pairs: Most pairs admitted at once (a single larger request is admitted when
            nothing else is).
        deadline_s: Each request's deadline: one whose estimated wait would pass it is refused.
        min_retry_after_s: Smallest Retry-After sent.
        clock: Seconds, monotonic (a test passes its own).

    Example:
        >>> now = [0.0]
        >>> meter = LoadMeter(8, 100, 2.0, 1, clock=lambda: now[0])
        >>> meter.admit(60), meter.admit(60)  # 120 pairs > 100; no throughput measured yet
        (None, Refusal(reason='queue holds 60 pairs; max_queue_pairs=100', retry_after_s=1))
        >>> now[0] = 2.0
        >>> meter.done(60, scored=True)  # 60 pairs in 2 busy seconds
        >>> meter.pairs_per_s
        30.0
        >>> meter.admit(90), meter.admit(10)  # 100 pairs at 30/s: past the 2 s deadline
        (None, Refusal(reason='queue holds 90 pairs, about 3.0 s of work at 30 pairs/s; \
request_timeout_s=2', retry_after_s=2))
    """

    def __init__(
        self,
        max_requests: int,
        max_pairs: int,
        deadline_s: float,
        min_retry_after_s: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_requests = max_requests
        self.max_pairs = max_pairs
        self.deadline_s = deadline_s
        self.min_retry_after_s = min_retry_after_s
        self.clock = clock
        self.requests = 0
        self.pairs = 0
        self._scored = 0.0
        self._busy_s = 0.0
        self._mark = 0.0

    @property
    def pairs_per_s(self) -> float | None:
        """Pairs scored per busy second, recent work weighing most (``None``: not measured)."""
        return self._scored / self._busy_s if self._busy_s > 0 and self._scored > 0 else None

    def refusal(self, pairs: int) -> Refusal | None:
        """Why a request of ``pairs`` pairs cannot be admitted now (``None``: it can)."""
        rate = self.pairs_per_s
        if self.requests >= self.max_requests:
            typical = self.pairs / max(self.requests, 1)  # one request must finish
            return Refusal(
                f"{self.requests} requests are in progress; max_queue={self.max_requests}",
                retry_after(typical, rate, self.min_retry_after_s),
            )
        if self.requests and self.pairs + pairs > self.max_pairs:
            return Refusal(
                f"queue holds {self.pairs} pairs; max_queue_pairs={self.max_pairs}",
                retry_after(self.pairs + pairs - self.max_pairs, rate, self.min_retry_after_s),
            )
        if self.requests and rate is not None and (self.pairs + pairs) / rate > self.deadline_s:
            fits = rate * self.deadline_s  # pairs the deadline leaves time for
            return Refusal(
                f"queue holds {self.pairs} pairs, about {self.pairs / rate:.1f} s of work at "
                f"{rate:.0f} pairs/s; request_timeout_s={self.deadline_s:g}",
                retry_after(self.pairs + pairs - fits, rate, self.min_retry_after_s),
            )
        return None

    def retry_after_s(self) -> int:
        """``Retry-After`` for a request dropped at the deadline: until the queue drains."""
        return retry_after(self.pairs, self.pairs_per_s, self.min_retry_after_s)

    def admit(self, pairs: int) -> Refusal | None:
        """Admit a request of ``pairs`` pairs, or say why not (then nothing changes)."""
        refused = self.refusal(pairs)
        if refused is None:
            if self.requests == 0:
                self._mark = self.clock()  # busy from now
            self.requests += 1
            self.pairs += pairs
        return refused

    def done(self, pairs: int, *, scored: bool, timed_out: bool = False) -> None:
        """An admitted request finished (``scored``: its pairs were scored, not abandoned;
        ``timed_out``: it was dropped at the deadline).

        A timed-out request counts as if its pairs had been scored in the busy time: an
        over-estimate of the throughput, but without it a server whose every request times out
        never measures one and never refuses work up front.
        """
        now = self.clock()
        self._busy_s += now - self._mark
        self._mark = now
        self.requests -= 1
        self.pairs -= pairs
        if scored or timed_out:
            self._scored += pairs
        if self._busy_s > FORGET_AFTER_S:
            self._scored, self._busy_s = self._scored / 2, self._busy_s / 2
