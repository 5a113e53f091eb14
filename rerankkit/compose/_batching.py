"""Cross-request micro-batching: concurrent rerank calls share one model call.

Many RAG requests in one app (or one server) each rerank a few dozen candidates. Scored one
call at a time, each pays its own padding, its own thread hop and, on a GPU, a small batch.
:class:`BatchingReranker` queues concurrent calls for at most ``max_wait_ms``, merges them into
one ``score_many`` call of the wrapped reranker (at most ``max_batch_pairs`` pairs, whole
requests only) and hands each caller its own scores back. A backend that batches across
groups (``CrossEncoderReranker``, ``CausalLMReranker``) tokenises every pair of the merged
call together, sorts the pairs by length and pads each model batch to its longest pair, so N
small concurrent requests cost about one large, tightly padded batch.

Only pointwise rerankers are merged (``Reranker.pointwise``): their score of a document does
not depend on the other documents of the call, so merging cannot change a result. Any other
reranker (listwise LLM, rank fusion, a cutting cascade) is passed through unchanged.

The scheduling rules are pure functions (:func:`batch_wait`, :func:`take_batch`); the
queue, the worker thread and the futures are the only I/O-like parts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rerankkit._abandon import AbandonedError, abandoned_when
from rerankkit._base import Group, Reranker, WrappingReranker
from rerankkit._ordering import Details, check_count
from rerankkit._validation import check_instance, check_int, check_number

logger = logging.getLogger(__name__)

Scored = tuple[Sequence[float], Details]


def take_batch(sizes: Sequence[int], max_batch_pairs: int) -> int:
    """How many requests, from the front of the queue, the next merged call takes.

    Requests are taken whole and in arrival order while their pairs fit in
    ``max_batch_pairs``; the first request is always taken, even when it alone is larger (it
    is never split: the backend cuts it into its own model batches).

    Args:
        sizes: Documents per queued request, oldest first.
        max_batch_pairs: Most (query, document) pairs per merged call.

    Returns:
        The number of requests to take (0 only when ``sizes`` is empty).

    Example:
        >>> take_batch([30, 40, 50], 100), take_batch([300, 10], 100), take_batch([], 100)
        (2, 1, 0)
    """
    taken, pairs = 0, 0
    for size in sizes:
        if taken and pairs + size > max_batch_pairs:
            break
        taken, pairs = taken + 1, pairs + size
    return taken


def batch_wait(
    pending_pairs: int, oldest_age_s: float, max_batch_pairs: int, max_wait_s: float
) -> float:
    """Seconds the worker should still wait for more requests before calling the model.

    It waits while the queue holds fewer than ``max_batch_pairs`` pairs and its oldest request
    has waited less than ``max_wait_s``, so no request waits more than ``max_wait_s`` for
    others (plus the time of the model calls ahead of it).

    Returns:
        ``0.0`` when the next batch should go now, else the seconds left to wait.

    Example:
        >>> batch_wait(100, 0.001, 512, 0.005) > 0, batch_wait(600, 0.0, 512, 0.005)
        (True, 0.0)
        >>> batch_wait(10, 0.010, 512, 0.005)
        0.0
    """
    if pending_pairs >= max_batch_pairs:
        return 0.0
    return max(0.0, max_wait_s - oldest_age_s)


@dataclass(eq=False)
class _Request:
    query: str
    documents: list[str]
    arrived: float
    future: Future[Scored] = field(default_factory=Future)
    abandoned: bool = False
    """Its async caller was cancelled: drop it from the queue, or stop its model call."""


class BatchingReranker(WrappingReranker):
    """Merges concurrent calls of a pointwise reranker into shared model calls.

    ``rerank``/``score`` from several threads and ``arerank``/``ascore`` from any number of
    asyncio tasks (in any event loop) are queued; one worker thread takes the queued requests
    whole, in arrival order, up to ``max_batch_pairs`` pairs, scores them with one
    ``score_many`` call of the wrapped reranker and resolves each caller's future with its
    own scores. Results are the wrapped reranker's (same validation, ordering, ``top_n``,
    ``score_threshold``; scores equal up to the float rounding of differently padded
    batches). Async callers never block their event loop (they await the future).

    Failure isolation: when a merged call raises, each of its requests is scored again on
    its own, so only the request that fails gets the error and no other caller loses its
    documents.

    Abandoned work is not done: when an async caller is cancelled (its HTTP client went
    away, its deadline passed), its request leaves the queue at once; when every request of
    the running merged call is abandoned, the call stops at its next model batch. Counted in
    ``abandoned``.

    A reranker that is not pointwise is not merged: every call goes straight through.

    Args:
        reranker: The reranker to batch.
        max_batch_pairs: Most (query, document) pairs per merged call (a larger single
            request goes alone). Default 512.
        max_wait_ms: Longest time, in milliseconds, the oldest queued request waits for
            others before its batch goes (``0`` = no waiting: merge only what queued up
            while the model was busy). Default 5.

    Raises:
        TypeError: ``reranker`` is not a ``Reranker``; a limit has the wrong type.
        ValueError: ``max_batch_pairs < 1`` or ``max_wait_ms`` negative or not finite.

    Example:
        >>> import asyncio
        >>> from rerankkit.testing import KeywordReranker
        >>> # 5 pairs fill a batch: the three requests below (2 + 2 + 1 pairs) go together
        >>> batching = BatchingReranker(KeywordReranker(), max_batch_pairs=5, max_wait_ms=10_000)
        >>> async def three_requests():
        ...     return await asyncio.gather(
        ...         batching.arerank("cat", ["a dog", "a cat"]),
        ...         batching.arerank("dog", ["a dog", "dog dog"]),
        ...         batching.arerank("fish", ["no match"]),
        ...     )
        >>> [[r.index for r in results] for results in asyncio.run(three_requests())]
        [[1, 0], [1, 0], [0]]
        >>> batching.model_calls  # one merged call for the three requests
        1
        >>> batching.close()
    """

    def __init__(
        self, reranker: Reranker, *, max_batch_pairs: int = 512, max_wait_ms: float = 5.0
    ) -> None:
        self.reranker: Reranker = check_instance(reranker, Reranker, "reranker")
        self.max_batch_pairs: int = check_int(max_batch_pairs, "max_batch_pairs", minimum=1)
        self.max_wait_ms = float(check_number(max_wait_ms, "max_wait_ms", minimum=0.0))
        self.model_calls = 0
        """Merged calls made to the wrapped reranker (isolating retries not counted)."""
        self.abandoned = 0
        """Requests whose caller was cancelled before their scores came: dropped from the
        queue, or stopped mid-call."""
        self._queue: deque[_Request] = deque()
        self._queued_pairs = 0
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False

    @property
    def queued_requests(self) -> int:
        """Requests waiting for a merged call (not counting the one being scored)."""
        with self._changed:
            return len(self._queue)

    @property
    def queued_pairs(self) -> int:
        """(query, document) pairs waiting for a merged call."""
        with self._changed:
            return self._queued_pairs

    # ----------------------------------------------------------------- Reranker hooks

    def _score_with_details(self, query: str, documents: list[str]) -> Scored:
        if not self.reranker.pointwise:
            return self.reranker._score_with_details(query, documents)
        return self._submit(query, documents).future.result()

    async def _ascore_with_details(self, query: str, documents: list[str]) -> Scored:
        if not self.reranker.pointwise:
            return await self.reranker._ascore_with_details(query, documents)
        request = self._submit(query, documents)
        try:
            return await asyncio.wrap_future(request.future)
        except asyncio.CancelledError:
            self._abandon(request)
            raise

    def _score_many_with_details(self, groups: list[Group]) -> list[Scored]:
        # Already one call for many groups: nothing to merge it with.
        return self.reranker._score_many_with_details(groups)

    # ----------------------------------------------------------------- the queue

    def _submit(self, query: str, documents: list[str]) -> _Request:
        request = _Request(query, documents, time.monotonic())
        with self._changed:
            if self._closed:
                raise RuntimeError("BatchingReranker is closed")
            self._queue.append(request)
            self._queued_pairs += len(documents)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name="rerankkit-batching", daemon=True
                )
                self._worker.start()
            self._changed.notify()
        return request

    def _abandon(self, request: _Request) -> None:
        """Its caller has gone: out of the queue now, or its running call may stop early."""
        with self._changed:
            answered = request.future.done() and not request.future.cancelled()
            if request.abandoned or answered:
                return
            request.abandoned = True
            self.abandoned += 1
            if request in self._queue:  # identity: _Request compares by id (eq=False)
                self._queue.remove(request)
                self._queued_pairs -= len(request.documents)

    def _next_batch(self) -> list[_Request] | None:
        """Block until a batch is due; ``None`` when closed and drained."""
        max_wait_s = self.max_wait_ms / 1000.0
        with self._changed:
            while not self._queue:
                if self._closed:
                    return None
                self._changed.wait()
            while not self._closed:
                age = time.monotonic() - self._queue[0].arrived
                wait = batch_wait(self._queued_pairs, age, self.max_batch_pairs, max_wait_s)
                if wait <= 0.0:
                    break
                self._changed.wait(wait)
            count = take_batch([len(r.documents) for r in self._queue], self.max_batch_pairs)
            batch = [self._queue.popleft() for _ in range(count)]
            self._queued_pairs -= sum(len(r.documents) for r in batch)
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                live = [r for r in batch if r.future.set_running_or_notify_cancel()]
                if live:  # a cancelled caller's request is skipped
                    self.model_calls += 1
                    self._resolve(live)
            except BaseException as error:  # e.g. KeyboardInterrupt in the model: no caller hangs
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                raise

    def _resolve(self, requests: list[_Request]) -> None:
        """Score ``requests`` in one call and resolve their futures. When a merged call fails,
        each request is scored again on its own, so only the one that fails gets the error."""
        try:
            groups = [(r.query, r.documents) for r in requests]
            with abandoned_when(lambda: all(r.abandoned for r in requests)):
                scored = self.reranker._score_many_with_details(groups)
            check_count(scored, len(requests), "score lists", "groups")
        except AbandonedError as error:  # every caller of this call has gone
            for request in requests:
                request.future.set_exception(error)
            return
        except Exception as error:
            if len(requests) == 1:
                requests[0].future.set_exception(error)
                return
            logger.warning(
                "merged call of %d requests failed (%s); scoring each on its own",
                len(groups),
                error,
            )
            for request in requests:
                self._resolve([request])
            return
        for request, result in zip(requests, scored, strict=True):
            request.future.set_result(result)

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Serve what is queued, then stop the worker thread; later calls raise RuntimeError.

        Idempotent. The worker is a daemon thread, so a program that never closes still exits.
        """
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def __reduce__(self) -> tuple[Any, tuple[Reranker]]:
        # The queue, worker thread and futures belong to this process: a copy (pickle, Ray)
        # is a fresh batcher around a copy of the wrapped reranker.
        rebuild = functools.partial(
            BatchingReranker, max_batch_pairs=self.max_batch_pairs, max_wait_ms=self.max_wait_ms
        )
        return rebuild, (self.reranker,)

    def __enter__(self) -> BatchingReranker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"BatchingReranker({self.reranker!r}, max_batch_pairs={self.max_batch_pairs}, "
            f"max_wait_ms={self.max_wait_ms:g})"
        )
