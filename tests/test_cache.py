"""Score cache: hits, only-missing-documents, LRU eviction, sharing, thread-safety, async."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from rerankkit import Reranker
from rerankkit.compose._cache import CachedReranker, ScoreCache, document_digest
from rerankkit.compose._cascade import CascadeReranker
from rerankkit.compose._fusion import FusionReranker
from rerankkit.testing import FunctionReranker, KeywordReranker


class Recording(Reranker):
    """Scores by word overlap and records the batches it is shown (thread-safe)."""

    def __init__(self, with_details: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.with_details = with_details
        self._lock = threading.Lock()
        self._inner = KeywordReranker()

    @property
    def pointwise(self) -> bool:
        return True

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        with self._lock:
            self.batches.append(list(documents))
        return self._inner.score(query, documents)

    def _score_with_details(self, query: str, documents: list[str]):  # type: ignore[no-untyped-def]
        scores = self._score(query, documents)
        details = [{"length": len(d)} for d in documents] if self.with_details else None
        return scores, details


def test_only_missing_documents_reach_the_model() -> None:
    inner = Recording()
    cached = CachedReranker(inner)
    first = cached.rerank("red apple", ["apple pie", "red apple", "pear"])
    assert inner.batches == [["apple pie", "red apple", "pear"]]
    again = cached.rerank("red apple", ["pear", "red apple", "apple pie"])
    assert inner.batches == [["apple pie", "red apple", "pear"]]  # all three were hits
    assert {(r.index, r.score) for r in again} == {(2 - r.index, r.score) for r in first}
    cached.rerank("red apple", ["red apple", "red wine", "pear"])
    assert inner.batches[-1] == ["red wine"]
    cached.rerank("green apple", ["red apple"])  # another query is another key
    assert inner.batches[-1] == ["red apple"]
    info = cached.cache.info()
    assert (info.hits, info.misses, info.currsize) == (5, 5, 5)


def test_duplicates_in_one_call_are_scored_once() -> None:
    inner = Recording()
    scores = CachedReranker(inner).score("cat", ["cat", "dog", "cat", "cat"])
    assert inner.batches == [["cat", "dog"]]
    assert scores == [1.0, 0.0, 1.0, 1.0]


def test_cached_results_equal_uncached_results_including_details() -> None:
    docs = ["a cat", "cat cat cat", "dog", "the cat sat", "bird"]
    plain = Recording(with_details=True).rerank("cat", docs, top_n=3)
    cached = CachedReranker(Recording(with_details=True))
    cold, warm = cached.rerank("cat", docs, top_n=3), cached.rerank("cat", docs, top_n=3)
    for results in (cold, warm):
        assert results == plain
        assert [dict(r.details) for r in results] == [dict(r.details) for r in plain]


def test_cached_details_cannot_be_changed_through_a_result() -> None:
    cached = CachedReranker(Recording(with_details=True))
    result = cached.rerank("cat", ["cat"])[0]
    with pytest.raises(TypeError):
        result.details["length"] = 99  # type: ignore[index]


def test_lru_eviction_order() -> None:
    inner = Recording()
    cached = CachedReranker(inner, maxsize=2)
    cached.score("q", ["a"])
    cached.score("q", ["b"])
    cached.score("q", ["a"])  # hit: "a" becomes most recent
    cached.score("q", ["c"])  # evicts "b", the least recently used
    assert cached.cache.info().evictions == 1
    cached.score("q", ["a"])
    assert inner.batches == [["a"], ["b"], ["c"]]  # "a" survived
    cached.score("q", ["b"])
    assert inner.batches[-1] == ["b"]  # "b" had been evicted
    assert len(cached.cache) == 2


def test_score_cache_primitives() -> None:
    cache = ScoreCache(maxsize=3)
    keys = [("m", "q", document_digest(t)) for t in ("x", "y", "z", "w")]
    cache.put_many(keys, [(float(i), {}) for i in range(4)])
    assert cache.get_many(keys) == [None, (1.0, {}), (2.0, {}), (3.0, {})]
    assert cache.info().evictions == 1
    cache.clear()
    assert len(cache) == 0 and cache.info().hits == 0
    assert document_digest("é") == document_digest("é") != document_digest("e")
    with pytest.raises(ValueError, match="maxsize"):
        ScoreCache(maxsize=0)
    with pytest.raises(ValueError, match="2 keys for 1 entries"):
        cache.put_many(keys[:2], [(0.0, {})])
    unbounded = ScoreCache(maxsize=None)
    unbounded.put_many(keys, [(0.0, {})] * 4)
    assert len(unbounded) == 4


def test_a_shared_cache_keeps_models_apart() -> None:
    shared = ScoreCache()
    by_length = CachedReranker(FunctionReranker(lambda q, d: float(len(d))), cache=shared)
    vowels = FunctionReranker(lambda q, d: float(sum(c in "aeiou" for c in d)))
    by_vowels = CachedReranker(vowels, cache=shared)
    assert by_length.score("q", ["banana", "kiwi"]) == [6.0, 4.0]
    assert by_vowels.score("q", ["banana", "kiwi"]) == [3.0, 2.0]
    assert by_length.score("q", ["banana", "kiwi"]) == [6.0, 4.0]
    assert len(shared) == 4


def test_default_cache_key_is_stable_and_unique_per_instance() -> None:
    a, b = KeywordReranker(), KeywordReranker()
    assert a.cache_key == a.cache_key
    assert a.cache_key != b.cache_key
    assert CachedReranker(a).cache_key == a.cache_key


class GroupRecording(Recording):
    """A pointwise reranker that batches across queries and records each batch of groups."""

    def __init__(self) -> None:
        super().__init__()
        self.group_calls: list[list[tuple[str, list[str]]]] = []

    def _score_many_with_details(self, groups):  # type: ignore[no-untyped-def]
        self.group_calls.append([(q, list(d)) for q, d in groups])
        return [(self._inner.score(q, d), None) for q, d in groups]


def test_set_dependent_rerankers_are_refused() -> None:
    cascade = CascadeReranker([(KeywordReranker(), 2)])
    fusion = FusionReranker([KeywordReranker(), KeywordReranker()])
    for reranker in (cascade, fusion):
        assert not reranker.pointwise
        with pytest.raises(TypeError, match="cannot be cached") as refused:
            CachedReranker(reranker)
        assert f"{type(reranker).__name__} is not pointwise" in str(refused.value)
    with pytest.raises(TypeError, match="reranker must be a Reranker"):
        CachedReranker("cross-encoder/ms-marco-MiniLM-L6-v2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache must be a ScoreCache"):
        CachedReranker(KeywordReranker(), cache={})  # type: ignore[arg-type]


def test_a_listwise_llm_reranker_is_refused_with_the_reason_and_the_alternative() -> None:
    from rerankkit.llm._listwise import LLMListwiseReranker
    from rerankkit.testing import OracleLLM

    relevance = {"best": 3.0, "good": 2.0, "fair": 1.0, "poor": 0.0}
    listwise = LLMListwiseReranker(OracleLLM(relevance), window_size=4, stride=2)
    # Why it must be refused: the same document's score changes with the other documents.
    assert listwise.score("q", ["good", "poor"])[0] == 1.0
    assert listwise.score("q", ["good", "poor", "best"])[0] == 0.5
    assert listwise.pointwise is False
    with pytest.raises(TypeError) as refused:
        CachedReranker(listwise)
    message = str(refused.value)
    assert "LLMListwiseReranker is not pointwise" in message
    assert "depend on the other documents" in message
    assert "cannot be cached" in message
    assert "CascadeReranker([(CachedReranker(cross_encoder), 20), (llm_reranker, 5)])" in message
    # What the message recommends works: the pointwise stage is cached, the LLM is not.
    stack = CascadeReranker([(CachedReranker(KeywordReranker()), 3), (listwise, 2)])
    assert [r.index for r in stack.rerank("best good", ["poor", "good", "best", "fair"])] == [2, 1]


def test_a_custom_reranker_is_cached_only_once_it_declares_itself_pointwise() -> None:
    class Undeclared(Reranker):
        def _score(self, query: str, documents: list[str]) -> Sequence[float]:
            return [0.0] * len(documents)

    with pytest.raises(TypeError, match=r"Undeclared is not pointwise.*overriding the `pointwise`"):
        CachedReranker(Undeclared())
    assert CachedReranker(Recording()).pointwise is True  # delegated to the wrapped reranker


def test_score_many_sends_every_uncached_document_to_the_model_in_one_call() -> None:
    inner = GroupRecording()
    cached = CachedReranker(inner)
    cached.score("red apple", ["apple pie", "pear"])
    groups = [
        ("red apple", ["apple pie", "red apple"]),  # "apple pie" is cached
        ("pear", []),
        ("pear", ["pear", "a pear", "pear"]),  # the repeated "pear" is scored once
        ("red apple", ["pear"]),  # all cached: this group does not reach the model
    ]
    scores = cached.score_many(groups)
    assert scores == [KeywordReranker().score(q, d) for q, d in groups]
    assert inner.batches == [["apple pie", "pear"]]  # the first, single-query call
    assert inner.group_calls == [[("red apple", ["red apple"]), ("pear", ["pear", "a pear"])]]
    assert cached.score_many(groups) == scores  # all hits now
    assert len(inner.group_calls) == 1 and len(inner.batches) == 1


def test_sixteen_threads_give_the_sequential_results() -> None:
    words = ["cat", "dog", "bird", "fish", "mat", "sat", "the", "a"]
    queries = [" ".join(words[i : i + 2]) for i in range(0, 8, 2)]
    docs = [" ".join(words[(i * 3 + j) % 8] for j in range(i % 4 + 1)) for i in range(40)]
    jobs = [(queries[i % 4], docs[(i * 7) % 40 :] + docs[: (i * 7) % 40]) for i in range(64)]

    expected = [KeywordReranker().rerank(q, d, top_n=10) for q, d in jobs]
    inner = Recording()
    cached = CachedReranker(inner, maxsize=50)  # small: evictions race with lookups
    barrier = threading.Barrier(16)

    def work(job: tuple[str, list[str]]) -> list:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)  # 16 threads start each round together
        return cached.rerank(job[0], job[1], top_n=10)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads constantly so unguarded updates would race
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            concurrent = list(pool.map(work, jobs))
    finally:
        sys.setswitchinterval(switch)
    assert concurrent == expected
    info = cached.cache.info()
    assert info.hits + info.misses == sum(len(d) for _, d in jobs)
    assert info.currsize <= 50
    assert sum(len(batch) for batch in inner.batches) <= info.misses


async def test_async_uses_the_cache_too() -> None:
    inner = Recording()
    cached = CachedReranker(inner)
    sync = cached.rerank("cat", ["a cat", "dog"])
    asynchronous = await cached.arerank("cat", ["dog", "a cat", "cat cat"])
    assert inner.batches == [["a cat", "dog"], ["cat cat"]]
    assert [(r.index, r.score) for r in asynchronous] == [(2, 2.0), (1, 1.0), (0, 0.0)]
    assert sync[0].score == 1.0
