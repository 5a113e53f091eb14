"""A thread-safe LRU score cache, so follow-up questions over the same candidates skip the model.

Entries are keyed by ``(reranker.cache_key, query, sha256(document))``: one ``ScoreCache`` can
be shared by several rerankers, and long documents cost 32 bytes of key each.

Only pointwise rerankers can be cached (``Reranker.pointwise``: cross-encoders, embedding
similarity, causal-LM and pointwise LLM judges): their score of a document does not depend on
the other candidates. Listwise LLM rerankers, rank or normalised fusions and cascades that cut
score a document relative to the rest of the list, so ``CachedReranker`` refuses them: cache
their pointwise parts instead (``CascadeReranker([(CachedReranker(ce), 20), (llm, 5)])``).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from rerankkit._base import Group, Reranker, WrappingReranker
from rerankkit._ordering import Details, check_count
from rerankkit._pickling import LocksDropped
from rerankkit._result import _NO_DETAILS, ERROR_KEY, FAILED_KEY
from rerankkit._validation import check_instance, check_int

CacheKey = tuple[str, str, bytes]
Entry = tuple[float, Mapping[str, Any]]
_NOTHING: tuple[Sequence[float], Details] = ([], None)  # no document left to score


class CacheInfo(NamedTuple):
    """Counters of a ``ScoreCache`` (like ``functools.lru_cache``'s, plus evictions)."""

    hits: int
    misses: int
    evictions: int
    maxsize: int | None
    currsize: int


def document_digest(document: str) -> bytes:
    """The 32-byte SHA-256 of a document's UTF-8 text (the cache key's document part)."""
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).digest()


class ScoreCache(LocksDropped):
    """Least-recently-used map ``(model, query, document hash) -> (score, details)``.

    Thread-safe: every read and write holds one lock, but model calls happen outside it,
    so threads never wait for each other's inference.

    Args:
        maxsize: Most entries kept; the least recently used is evicted first. ``None`` keeps
            everything (for a bounded batch job).

    Example:
        >>> cache = ScoreCache(maxsize=2)
        >>> cache.put_many([("m", "q", b"a"), ("m", "q", b"b"), ("m", "q", b"c")], [(1.0, {})] * 3)
        >>> cache.get_many([("m", "q", b"a"), ("m", "q", b"c")])
        [None, (1.0, {})]
        >>> cache.info()
        CacheInfo(hits=1, misses=1, evictions=1, maxsize=2, currsize=2)
    """

    def __init__(self, maxsize: int | None = 100_000) -> None:
        self.maxsize = check_int(maxsize, "maxsize", minimum=1, optional=True)
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    def get_many(self, keys: Sequence[CacheKey]) -> list[Entry | None]:
        """The entry for each key (``None`` when absent); found entries become most recent."""
        found: list[Entry | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    self._entries.move_to_end(key)
                found.append(entry)
        return found

    def put_many(self, keys: Sequence[CacheKey], entries: Sequence[Entry]) -> None:
        """Store entries (most recent last), evicting the least recently used beyond ``maxsize``."""
        if len(keys) != len(entries):
            raise ValueError(f"{len(keys)} keys for {len(entries)} entries")
        with self._lock:
            for key, entry in zip(keys, entries, strict=True):
                self._entries[key] = entry
                self._entries.move_to_end(key)
            if self.maxsize is not None:
                while len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
                    self._evictions += 1

    def info(self) -> CacheInfo:
        """Hit, miss and eviction counts and the current size."""
        with self._lock:
            return CacheInfo(
                self._hits, self._misses, self._evictions, self.maxsize, len(self._entries)
            )

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._hits = self._misses = self._evictions = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"ScoreCache(maxsize={self.maxsize!r}, currsize={len(self)})"

    def __getstate__(self) -> dict[str, Any]:
        # A pickled cache is a copy with the same entries (read-only details are plain dicts
        # on the way, frozen again on arrival); caches in two processes are not shared.
        with self._lock:
            state = super().__getstate__()
            state["_entries"] = [(key, (s, dict(d))) for key, (s, d) in self._entries.items()]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        entries = state.pop("_entries")
        super().__setstate__(state)
        self._entries = OrderedDict((key, (s, _frozen(d))) for key, (s, d) in entries)


def _frozen(details: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # A caller mutating one result's details must not change what the cache hands out later.
    return MappingProxyType(dict(details)) if details else _NO_DETAILS


def _failed(entry: Entry) -> bool:
    score, details = entry
    return math.isnan(score) or bool(details.get(FAILED_KEY) or details.get(ERROR_KEY))


class CachedReranker(WrappingReranker):
    """Wraps a pointwise reranker with a score cache; only uncached documents reach the model.

    Duplicate documents within one call are scored once. Backend details (e.g. a long
    document's best chunk span) are cached with the score. A failure is never cached (a NaN
    score, or details flagging ``rerank_failed``/``rerank_error``): the next call asks the
    model again. Its ``pointwise`` flag and ``cache_key`` are the wrapped reranker's (always
    pointwise: others are refused).

    Args:
        reranker: The reranker to cache (pointwise; see the module docstring).
        cache: A ``ScoreCache`` to share between rerankers or pipelines; a private one of
            ``maxsize`` entries when omitted.
        maxsize: Size of the private cache (ignored when ``cache`` is given).

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> inner = KeywordReranker()
        >>> cached = CachedReranker(inner, maxsize=1000)
        >>> first = cached.rerank("cat", ["a cat", "a dog"])
        >>> again = cached.rerank("cat", ["a dog", "a cat", "cat cat"])  # one new document
        >>> inner.calls, cached.cache.info().hits
        (2, 2)
    """

    def __init__(
        self, reranker: Reranker, *, cache: ScoreCache | None = None, maxsize: int | None = 10_000
    ) -> None:
        if not check_instance(reranker, Reranker, "reranker").pointwise:
            raise TypeError(
                f"{type(reranker).__name__} is not pointwise (reranker.pointwise is False: its "
                "score of a document may depend on the other documents of the call), so its "
                "scores cannot be cached per document: a later call with other documents could "
                "get stale scores. Cache its pointwise part instead, e.g. the first stage of a "
                "cascade: CascadeReranker([(CachedReranker(cross_encoder), 20), (llm_reranker, "
                "5)]). A custom reranker whose score depends only on (query, document) says so "
                "by overriding the `pointwise` property to return True."
            )
        self.reranker = reranker
        self.cache: ScoreCache = (
            ScoreCache(maxsize) if cache is None else check_instance(cache, ScoreCache, "cache")
        )

    def _plan(
        self, query: str, documents: list[str]
    ) -> tuple[list[CacheKey], list[Entry | None], list[int]]:
        """Keys, cached entries, and the positions of the first copy of each missing document."""
        model = self.reranker.cache_key
        keys = [(model, query, document_digest(document)) for document in documents]
        entries = self.cache.get_many(keys)
        missing: dict[CacheKey, int] = {}
        for position, (key, entry) in enumerate(zip(keys, entries, strict=True)):
            if entry is None and key not in missing:
                missing[key] = position
        return keys, entries, list(missing.values())

    def _complete(
        self,
        keys: list[CacheKey],
        entries: list[Entry | None],
        missing: list[int],
        scores: Sequence[float],
        details: Details,
    ) -> tuple[list[float], Details]:
        check_count(scores, len(missing))
        # Raw scores: NaN (a failure) reaches the base, which flags it; it is not stored.
        fresh = {
            keys[position]: (float(score), _frozen(details[i] if details else None))
            for i, (position, score) in enumerate(zip(missing, scores, strict=True))
        }
        good = [key for key, entry in fresh.items() if not _failed(entry)]
        self.cache.put_many(good, [fresh[key] for key in good])
        filled = [
            entry if entry is not None else fresh[key]
            for key, entry in zip(keys, entries, strict=True)
        ]
        return [score for score, _ in filled], [extra for _, extra in filled]

    def _score_with_details(self, query: str, documents: list[str]) -> tuple[list[float], Details]:
        keys, entries, missing = self._plan(query, documents)
        todo = [documents[i] for i in missing]
        fresh = self.reranker._score_with_details(query, todo) if todo else _NOTHING
        return self._complete(keys, entries, missing, *fresh)

    def _score_many_with_details(
        self, groups: list[Group]
    ) -> list[tuple[Sequence[float], Details]]:
        # The uncached documents of every group go to the inner reranker in one call, so a
        # backend that batches across queries still does.
        plans = [self._plan(query, documents) for query, documents in groups]
        todo = [g for g, (_, _, missing) in enumerate(plans) if missing]
        uncached = [(groups[g][0], [groups[g][1][i] for i in plans[g][2]]) for g in todo]
        fresh = self.reranker._score_many_with_details(uncached) if todo else []
        check_count(fresh, len(todo), "score lists", "groups")
        scored = dict(zip(todo, fresh, strict=True))
        return [
            self._complete(keys, entries, missing, *scored.get(g, _NOTHING))
            for g, (keys, entries, missing) in enumerate(plans)
        ]

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[list[float], Details]:
        keys, entries, missing = self._plan(query, documents)
        todo = [documents[i] for i in missing]
        fresh = await self.reranker._ascore_with_details(query, todo) if todo else _NOTHING
        return self._complete(keys, entries, missing, *fresh)

    def __repr__(self) -> str:
        return f"CachedReranker({self.reranker!r}, cache={self.cache!r})"
