"""BatchingReranker: concurrent calls merged into shared model calls, each caller its own
results.

The merging tests hold the wrapped reranker's first model call on a gate, queue requests
behind it, and release it: what the next model call contains is then decided by the queue,
not by timing. The wrapped rerankers are real rerankers (a subclass of the keyword reranker
that records the groups of each model call), never a mock of the batcher.
"""

from __future__ import annotations

import asyncio
import pickle
import random
import threading
import time
from collections.abc import Sequence

import pytest

from rerankkit import Reranker
from rerankkit._base import Group
from rerankkit.compose._batching import BatchingReranker, batch_wait, take_batch
from rerankkit.testing import FixedScoreReranker, KeywordReranker

WORDS = ["cat", "dog", "fish", "bird", "red", "blue", "green", "apple", "pear", "tree", "river"]
BOUND_S = 10.0  # every wait in these tests is bounded; none measures speed


class RecordingReranker(KeywordReranker):
    """The keyword reranker, recording every model call's groups; the first call can be held
    on a gate until the test releases it."""

    def __init__(self, *, hold_first: bool = False, fail_on: str | None = None) -> None:
        super().__init__()
        self.batches: list[list[Group]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not hold_first:
            self.gate.set()
        self.fail_on = fail_on

    def _score_many_with_details(self, groups: list[Group]) -> list[tuple[Sequence[float], None]]:
        self.batches.append([(query, list(documents)) for query, documents in groups])
        self.entered.set()
        assert self.gate.wait(BOUND_S), "the test never released the gate"
        if self.fail_on is not None and any(
            self.fail_on in document for _, documents in groups for document in documents
        ):
            raise RuntimeError(f"model failed on {self.fail_on!r}")
        return [(self._score(query, documents), None) for query, documents in groups]


def random_requests(count: int, seed: int) -> list[tuple[str, list[str], int | None]]:
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        query = " ".join(rng.sample(WORDS, 2))
        documents = [
            " ".join(rng.choices(WORDS, k=rng.randint(1, 6))) for _ in range(rng.randint(1, 12))
        ]
        requests.append((query, documents, rng.choice([None, 1, 3, 50])))
    return requests


async def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("sizes", "limit", "taken"),
    [
        ([], 10, 0),
        ([3], 10, 1),
        ([20], 10, 1),  # a large request goes alone, never split
        ([4, 6, 1], 10, 2),  # whole requests in arrival order: 4 + 6 fit, 1 more does not
        ([4, 7, 1], 10, 1),  # no skipping ahead to fill the batch: arrival order is kept
        ([1] * 12, 10, 10),
        ([10, 1], 10, 1),
    ],
)
def test_take_batch(sizes: list[int], limit: int, taken: int) -> None:
    assert take_batch(sizes, limit) == taken


def test_take_batch_takes_the_longest_fitting_prefix() -> None:
    rng = random.Random(0)
    for _ in range(500):
        sizes = [rng.randint(1, 30) for _ in range(rng.randint(1, 10))]
        limit = rng.randint(1, 60)
        taken = take_batch(sizes, limit)
        assert taken >= 1
        assert taken == 1 or sum(sizes[:taken]) <= limit
        assert taken == len(sizes) or sum(sizes[: taken + 1]) > limit


def test_batch_wait() -> None:
    assert batch_wait(512, 0.0, 512, 0.005) == 0.0  # full: go now
    assert batch_wait(10, 0.010, 512, 0.005) == 0.0  # the oldest waited long enough
    assert batch_wait(10, 0.002, 512, 0.005) == pytest.approx(0.003)
    assert batch_wait(10, 0.0, 512, 0.0) == 0.0  # max_wait_ms=0: never wait


# --------------------------------------------------------------------------- results


def test_many_concurrent_tasks_each_get_the_unbatched_results() -> None:
    requests = random_requests(60, seed=1)
    plain = KeywordReranker()
    expected = [plain.rerank(q, docs, top_n=top_n) for q, docs, top_n in requests]

    async def run(batching: BatchingReranker) -> list[list]:  # type: ignore[type-arg]
        return await asyncio.gather(
            *(batching.arerank(q, docs, top_n=top_n) for q, docs, top_n in requests)
        )

    inner = RecordingReranker()
    with BatchingReranker(inner, max_batch_pairs=64, max_wait_ms=2) as batching:
        got = asyncio.run(run(batching))
    assert got == expected
    # every document of every request reached the model exactly once
    scored = sorted((q, tuple(d)) for batch in inner.batches for q, d in batch)
    assert scored == sorted((q, tuple(docs)) for q, docs, _ in requests)
    assert all(sum(len(d) for _, d in batch) <= 64 or len(batch) == 1 for batch in inner.batches)


def test_threads_calling_sync_rerank_get_the_unbatched_results() -> None:
    requests = random_requests(40, seed=2)
    plain = KeywordReranker()
    expected = {i: plain.rerank(q, d, top_n=n) for i, (q, d, n) in enumerate(requests)}
    got: dict[int, object] = {}
    with BatchingReranker(KeywordReranker(), max_wait_ms=1) as batching:

        def call(i: int) -> None:
            q, d, n = requests[i]
            got[i] = batching.rerank(q, d, top_n=n)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BOUND_S)
    assert got == expected


def test_score_and_empty_input_follow_the_base_semantics() -> None:
    with BatchingReranker(KeywordReranker()) as batching:
        assert batching.score("cat", ["a cat", "dog"]) == [1.0, 0.0]
        assert batching.rerank("cat", []) == []
        assert asyncio.run(batching.ascore("cat", ["cat cat"])) == [2.0]
        assert batching.score_many([("cat", ["cat"]), ("dog", [])]) == [[1.0], []]
        with pytest.raises(ValueError, match="top_n"):
            batching.rerank("cat", ["cat"], top_n=0)
        with pytest.raises(TypeError, match=r"documents\[1\]"):
            batching.rerank("cat", ["cat", None])  # type: ignore[list-item]


# --------------------------------------------------------------------------- merging


def test_requests_queued_behind_a_busy_model_share_one_call() -> None:
    inner = RecordingReranker(hold_first=True)
    requests = random_requests(12, seed=3)

    async def run(batching: BatchingReranker) -> list[list]:  # type: ignore[type-arg]
        first = asyncio.ensure_future(batching.arerank("cat", ["a cat", "a dog"]))
        await wait_until(inner.entered.is_set, "the first model call")
        rest = [asyncio.ensure_future(batching.arerank(q, d)) for q, d, _ in requests]
        await wait_until(lambda: batching.queued_requests == len(requests), "the queue")
        inner.gate.set()
        return await asyncio.gather(first, *rest)

    with BatchingReranker(inner, max_batch_pairs=10_000, max_wait_ms=0) as batching:
        results = asyncio.run(run(batching))
        assert batching.model_calls == 2
    assert len(inner.batches) == 2
    assert inner.batches[1] == [(q, d) for q, d, _ in requests]  # arrival order, whole requests
    plain = KeywordReranker()
    assert results[1:] == [plain.rerank(q, d) for q, d, _ in requests]


def test_merged_calls_respect_max_batch_pairs() -> None:
    inner = RecordingReranker(hold_first=True)
    sizes = [3, 4, 2, 5, 1, 6]
    requests = [("cat", [f"cat {i}"] * size) for i, size in enumerate(sizes)]

    async def run(batching: BatchingReranker) -> None:
        first = asyncio.ensure_future(batching.arerank("dog", ["dog"]))
        await wait_until(inner.entered.is_set, "the first model call")
        rest = [asyncio.ensure_future(batching.arerank(q, d)) for q, d in requests]
        await wait_until(lambda: batching.queued_requests == len(requests), "the queue")
        inner.gate.set()
        await asyncio.gather(first, *rest)

    with BatchingReranker(inner, max_batch_pairs=7, max_wait_ms=0) as batching:
        asyncio.run(run(batching))
    merged = [[len(d) for _, d in batch] for batch in inner.batches[1:]]
    assert merged == [[3, 4], [2, 5], [1, 6]]


def test_one_failing_request_does_not_lose_the_others() -> None:
    inner = RecordingReranker(hold_first=True, fail_on="boom")
    good = random_requests(5, seed=4)

    async def run(batching: BatchingReranker) -> list[object]:
        first = asyncio.ensure_future(batching.arerank("cat", ["cat"]))
        await wait_until(inner.entered.is_set, "the first model call")
        tasks = [asyncio.ensure_future(batching.arerank(q, d)) for q, d, _ in good[:2]]
        tasks.append(asyncio.ensure_future(batching.arerank("cat", ["a cat", "boom"])))
        tasks += [asyncio.ensure_future(batching.arerank(q, d)) for q, d, _ in good[2:]]
        await wait_until(lambda: batching.queued_requests == 6, "the queue")
        inner.gate.set()
        return await asyncio.gather(first, *tasks, return_exceptions=True)

    with BatchingReranker(inner, max_wait_ms=0) as batching:
        results = asyncio.run(run(batching))
    failed = results[3]
    assert isinstance(failed, RuntimeError) and "boom" in str(failed)
    plain = KeywordReranker()
    assert [results[1], results[2], *results[4:]] == [plain.rerank(q, d) for q, d, _ in good]
    # the merged call failed, then each request was scored on its own
    assert len(inner.batches[1]) == 6 and all(len(batch) == 1 for batch in inner.batches[2:])


def test_a_cancelled_queued_request_is_skipped() -> None:
    inner = RecordingReranker(hold_first=True)

    async def run(batching: BatchingReranker) -> list[object]:
        first = asyncio.ensure_future(batching.arerank("cat", ["cat"]))
        await wait_until(inner.entered.is_set, "the first model call")
        dropped = asyncio.ensure_future(batching.arerank("dog", ["dropped dog"]))
        kept = asyncio.ensure_future(batching.arerank("dog", ["kept dog"]))
        await wait_until(lambda: batching.queued_requests == 2, "the queue")
        dropped.cancel()
        await wait_until(dropped.done, "the cancellation")  # its queued future is cancelled too
        inner.gate.set()
        return await asyncio.gather(first, kept)

    with BatchingReranker(inner, max_wait_ms=0) as batching:
        asyncio.run(run(batching))
    assert inner.batches[1] == [("dog", ["kept dog"])]


def test_a_reranker_that_is_not_pointwise_is_not_merged() -> None:
    inner = FixedScoreReranker([0.1, 0.9])
    with BatchingReranker(inner) as batching:
        assert not batching.pointwise
        assert [r.index for r in batching.rerank("q", ["a", "b"])] == [1, 0]
        assert asyncio.run(batching.arerank("q", ["a", "b"]))[0].index == 1
        assert batching.model_calls == 0 and inner.calls == 2


# --------------------------------------------------------------------------- lifecycle


def test_close_serves_what_is_queued_then_refuses() -> None:
    batching = BatchingReranker(KeywordReranker(), max_wait_ms=0)
    assert batching.rerank("cat", ["cat"])[0].score == 1.0
    batching.close()
    batching.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        batching.rerank("cat", ["cat"])


def test_pickles_as_a_fresh_batcher() -> None:
    batching = BatchingReranker(KeywordReranker(), max_batch_pairs=9, max_wait_ms=3)
    batching.rerank("cat", ["cat"])  # a started worker thread must not block pickling
    copy = pickle.loads(pickle.dumps(batching))
    assert (copy.max_batch_pairs, copy.max_wait_ms) == (9, 3.0)
    assert copy.rerank("cat", ["dog", "cat"])[0].index == 1
    batching.close()
    copy.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_batch_pairs": 0}, ValueError, "max_batch_pairs"),
        ({"max_batch_pairs": 2.5}, TypeError, "max_batch_pairs"),
        ({"max_wait_ms": -1}, ValueError, "max_wait_ms"),
        ({"max_wait_ms": float("inf")}, ValueError, "max_wait_ms"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict, error: type, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=match):
        BatchingReranker(KeywordReranker(), **kwargs)


def test_wraps_only_rerankers() -> None:
    with pytest.raises(TypeError, match="reranker must be a Reranker"):
        BatchingReranker("keyword:")  # type: ignore[arg-type]
    assert isinstance(BatchingReranker(KeywordReranker()), Reranker)


class Abort(BaseException):
    """Not an Exception: stands for KeyboardInterrupt/SystemExit inside the model call."""


class AbortingReranker(KeywordReranker):
    def _score_many_with_details(self, groups: list[Group]) -> list[tuple[Sequence[float], None]]:
        if any("abort" in document for _, documents in groups for document in documents):
            raise Abort("stop")
        return super()._score_many_with_details(groups)  # type: ignore[return-value]


def test_a_worker_killed_by_a_base_exception_fails_its_callers_and_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    with BatchingReranker(AbortingReranker(), max_wait_ms=0) as batching:
        with pytest.raises(Abort):
            batching.rerank("cat", ["abort"])  # the caller gets the error, never hangs
        batching._worker.join(BOUND_S)  # type: ignore[union-attr]
        assert len(died) == 1 and isinstance(died[0], Abort)  # the worker thread ended with it
        assert batching.rerank("cat", ["dog", "cat"])[0].index == 1  # a new worker serves
