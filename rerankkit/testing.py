"""Deterministic rerankers for tests, yours and ours: no model, no randomness."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence

from rerankkit._base import Reranker

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class KeywordReranker(Reranker):
    """Scores a document by how many of its words occur in the query (case-insensitive).

    Example:
        >>> KeywordReranker().score("red apple", ["an apple", "red apple pie", "pear"])
        [1.0, 2.0, 0.0]
    """

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def _score(self, query: str, documents: list[str]) -> list[float]:
        with self._lock:
            self.calls += 1
        terms = set(_words(query))
        return [float(sum(word in terms for word in _words(doc))) for doc in documents]


class FunctionReranker(Reranker):
    """Scores with a plain function ``(query, document) -> float``; counts its calls.

    Example:
        >>> FunctionReranker(lambda q, d: -len(d)).rerank("q", ["long text", "short"])[0].index
        1
    """

    def __init__(self, fn: Callable[[str, str], float]) -> None:
        self.fn = fn
        self.calls = 0
        self._lock = threading.Lock()

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        with self._lock:
            self.calls += 1
        return [self.fn(query, doc) for doc in documents]


class FixedScoreReranker(Reranker):
    """Returns the given scores for any input of the same length (for ordering tests).

    Example:
        >>> FixedScoreReranker([0.2, 0.8]).rerank("q", ["a", "b"])[0].index
        1
    """

    def __init__(self, scores: Sequence[float]) -> None:
        self.scores = list(scores)
        self.calls = 0

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        self.calls += 1
        return self.scores


__all__ = ["FixedScoreReranker", "FunctionReranker", "KeywordReranker"]
