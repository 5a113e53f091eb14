"""The ``Reranker`` base class: every shared behaviour lives here, once."""

from __future__ import annotations

import asyncio
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from rerankkit._ordering import clean_scores, rank
from rerankkit._result import RerankResult
from rerankkit._validation import (
    check_documents,
    check_query,
    check_score_threshold,
    check_top_n,
)

Details = Sequence[Mapping[str, Any]] | None


class Reranker(ABC):
    """Base class of every backend.

    A backend implements ``_score`` (validated query, non-empty list of strings, scores in
    input order). The base does the rest identically for all backends: validation, empty
    input, ordering with stable ties, ``score_threshold`` then ``top_n``, and async.

    Backends with native async override ``_ascore_with_details``; backends that report
    extras per document (chunk spans, stage scores) override ``_score_with_details``.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> KeywordReranker().rerank("cat", ["a dog", "a cat", "cat cat"], top_n=2)
        [RerankResult(index=2, score=2.0), RerankResult(index=1, score=1.0)]
    """

    @abstractmethod
    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        """Scores for ``documents`` in input order; higher is more relevant."""

    def _score_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        return self._score(query, documents), None

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        # Model work runs in a worker thread so the caller's event loop keeps serving.
        return await asyncio.to_thread(self._score_with_details, query, documents)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to ``query``, in input order.

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> KeywordReranker().score("cat", ["a dog", "a cat"])
            [0.0, 1.0]
        """
        query, docs = check_query(query), check_documents(documents)
        if not docs:
            return []
        scores, _ = self._score_with_details(query, docs)
        return clean_scores(scores, len(docs))

    async def ascore(self, query: str, documents: Sequence[str]) -> list[float]:
        """Async ``score``."""
        query, docs = check_query(query), check_documents(documents)
        if not docs:
            return []
        scores, _ = await self._ascore_with_details(query, docs)
        return clean_scores(scores, len(docs))

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> list[RerankResult]:
        """Documents' positions sorted by relevance, best first.

        Args:
            query: The search query.
            documents: Candidate texts; results refer to them by position.
            top_n: Keep at most this many (``None`` keeps all).
            score_threshold: Keep only ``score >= score_threshold`` (applied before ``top_n``).

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> [r.index for r in KeywordReranker().rerank("cat", ["dog", "cat"])]
            [1, 0]
        """
        query, docs = check_query(query), check_documents(documents)
        top_n, score_threshold = check_top_n(top_n), check_score_threshold(score_threshold)
        if not docs:
            return []
        scores, details = self._score_with_details(query, docs)
        return self._select(clean_scores(scores, len(docs)), details, top_n, score_threshold)

    async def arerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> list[RerankResult]:
        """Async ``rerank``; never blocks the event loop."""
        query, docs = check_query(query), check_documents(documents)
        top_n, score_threshold = check_top_n(top_n), check_score_threshold(score_threshold)
        if not docs:
            return []
        scores, details = await self._ascore_with_details(query, docs)
        return self._select(clean_scores(scores, len(docs)), details, top_n, score_threshold)

    def _select(
        self,
        scores: list[float],
        details: Details,
        top_n: int | None,
        score_threshold: float | None,
    ) -> list[RerankResult]:
        """Order, threshold and cut. A backend that returns only some documents by design
        (a cascade drops what its earlier stages cut) narrows the candidates, then calls this."""
        return rank(scores, top_n=top_n, score_threshold=score_threshold, details=details)

    @property
    def cache_key(self) -> str:
        """Identity of this reranker's scores in a shared ``rerankkit.ScoreCache``.

        Two rerankers with equal keys must score every (query, document) alike. The default
        is unique to this instance; a backend whose scores depend only on its settings may
        override it (model path, revision, max_length, ...) so equal instances share entries.
        """
        key = self.__dict__.get("_rerankkit_cache_key")
        if key is None:  # setdefault: two threads racing here still agree on one key
            key = self.__dict__.setdefault(
                "_rerankkit_cache_key", f"{type(self).__qualname__}:{uuid.uuid4().hex}"
            )
        return key

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
