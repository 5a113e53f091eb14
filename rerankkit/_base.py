"""The ``Reranker`` base class: every shared behaviour lives here, once."""

from __future__ import annotations

import itertools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, TypeVar

from rerankkit._abandon import in_thread
from rerankkit._ordering import (
    Details,
    RelevanceCut,
    finite_scores,
    live_positions,
    rank,
    relevance_cut,
    with_empty_documents,
)
from rerankkit._pickling import LocksDropped
from rerankkit._result import RerankResult
from rerankkit._validation import (
    ON_NO_RELEVANT,
    check_choice,
    check_documents,
    check_min_relevance,
    check_query,
    check_score_threshold,
    check_top_n,
)
from rerankkit.errors import InvalidTextError

Group = tuple[str, list[str]]
"""One validated ``(query, documents)`` pair handed to ``_score_many_with_details``."""
T = TypeVar("T")


def split_by_group(values: Sequence[T], groups: Sequence[Group]) -> list[Sequence[T]]:
    """``values``, one per document of every group in order, cut back into one slice per group.

    For ``_score_many_with_details`` overrides that score all groups' documents as one list.

    Example:
        >>> split_by_group([0.1, 0.2, 0.3], [("q1", ["a", "b"]), ("q2", ["c"])])
        [[0.1, 0.2], [0.3]]
    """
    bounds = [0, *itertools.accumulate(len(documents) for _, documents in groups)]
    return [values[start:end] for start, end in itertools.pairwise(bounds)]


_NONE: tuple[Sequence[float], Details] = ([], None)
"""What a group without live documents scores: nothing."""


def _every_document(
    total: int, live: list[int], scored: tuple[Sequence[float], Details]
) -> tuple[list[float], Details]:
    """Finite scores and details of all ``total`` documents from a backend's answer for the
    ``live`` ones (NaN flagged, empty documents flagged ``empty_document``)."""
    return with_empty_documents(total, live, *finite_scores(scored[0], len(live), scored[1]))


def _checked(
    query: Any, documents: Any, top_n: Any, score_threshold: Any
) -> tuple[str, list[str], int | None, float | None]:
    """``rerank``'s arguments, checked (each error names the argument and position)."""
    return (
        check_query(query),
        check_documents(documents),
        check_top_n(top_n),
        check_score_threshold(score_threshold),
    )


def check_relevance_cut(
    reranker: Reranker, min_relevance: Any, on_no_relevant: Any
) -> RelevanceCut | None:
    """The checked adaptive cut (``None`` without ``min_relevance``).

    Raises:
        TypeError, ValueError: ``min_relevance`` is not a number in [0, 1], or
            ``on_no_relevant`` is not ``"empty"`` or ``"best"``.
        ValueError: ``reranker``'s scores are not calibrated (see
            :attr:`Reranker.calibrated_scores`); the message says how to calibrate.
    """
    value = check_min_relevance(min_relevance)
    mode = check_choice(on_no_relevant, "on_no_relevant", ON_NO_RELEVANT)
    if value is None:
        return None
    if not reranker.calibrated_scores:
        raise ValueError(uncalibrated_message(repr(reranker)))
    return RelevanceCut(value, mode)


def uncalibrated_message(reranker: str) -> str:
    """Why ``min_relevance`` is refused on ``reranker`` (its repr or spec), and how to calibrate.

    A score in [0, 1] (a sigmoid, P(yes), a yes/no judge) is no calibrated probability either:
    raw sigmoid scores of the MS MARCO cross-encoder had ECE 0.499 on NovelEval (BENCHMARKS.md).
    """
    return (
        f"min_relevance needs calibrated probabilities, but {reranker} is not calibrated (its "
        "scores are cosines, logits, MaxSim sums, ranks, grades, or a sigmoid/P(yes) that is "
        "in [0, 1] but not P(relevant) on your data); calibrate it on judged data: `rerankkit "
        "calibrate --data DIR --run RUN --reranker SPEC --output cal.json`, then use "
        "CalibratedReranker(reranker, 'cal.json') or the spec 'SPEC?calibration=cal.json'"
    )


def _check_groups(groups: Any) -> list[Group]:
    """``groups`` as validated ``(query, documents)`` pairs; errors name the group's position."""
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
        raise TypeError(
            f"groups must be a sequence of (query, documents) pairs, got {type(groups).__name__}"
        )
    checked: list[Group] = []
    for position, group in enumerate(groups):
        if isinstance(group, (str, bytes)) or not isinstance(group, Sequence) or len(group) != 2:
            raise TypeError(f"groups[{position}] must be a (query, documents) pair, got {group!r}")
        query, documents = group
        try:
            query = check_query(query)
        except InvalidTextError as error:
            raise InvalidTextError(
                f"groups[{position}] query", error.offset, error.character
            ) from None
        except (TypeError, ValueError) as error:
            raise type(error)(f"groups[{position}]: {error}") from None
        checked.append((query, check_documents(documents, f"groups[{position}] documents")))
    return checked


class Reranker(LocksDropped, ABC):
    """Base class of every backend.

    A backend implements ``_score`` (validated query, non-empty list of strings, scores in
    input order). The base does the rest identically for all backends: validation, empty
    input, ordering with stable ties, ``score_threshold`` then ``top_n``, and async.

    Backends with native async override ``_ascore_with_details``; backends that report
    extras per document (chunk spans, stage scores) override ``_score_with_details``.
    Backends that can share work across queries override ``_score_many_with_details``
    (behind the public ``score_many``).

    Capability flags (read-only properties, so wrappers such as ``CachedReranker`` delegate
    to what they wrap) tell generic code what a reranker promises, instead of type checks:

    * ``pointwise``: a document's score depends only on (query, document).

    ``_sees_empty_documents`` (class attribute, default ``False``) lets a composite whose
    parts are rerankers run through their public methods (a cascade) pass empty documents to
    its parts, which rank and flag them: a cascade's cuts then treat them like any other
    document ranked last.

    Rerankers pickle (multiprocessing, Ray, framework persistence): their locks are left out
    and made anew, and a backend that loads a model pickles as its constructor arguments and
    loads the model again when unpickled (``rerankkit._pickling``).

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> KeywordReranker().rerank("cat", ["a dog", "a cat", "cat cat"], top_n=2)
        [RerankResult(index=2, score=2.0), RerankResult(index=1, score=1.0)]
    """

    _sees_empty_documents: bool = False

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
        # Model work runs in a worker thread so the caller's event loop keeps serving; a
        # cancelled caller stops it at the next model batch.
        return await in_thread(self._score_with_details, query, documents)

    def _score_many_with_details(
        self, groups: list[Group]
    ) -> list[tuple[Sequence[float], Details]]:
        """Scores (and details) of several non-empty groups; default: one call per group.

        A backend that batches across queries overrides this; its scores must equal the
        per-group ``_score_with_details`` (up to float rounding of differently padded batches).
        """
        return [self._score_with_details(query, documents) for query, documents in groups]

    def _live(self, documents: list[str]) -> list[int]:
        return (
            list(range(len(documents))) if self._sees_empty_documents else live_positions(documents)
        )

    def _judge(self, query: str, documents: list[str]) -> tuple[list[float], Details]:
        """Finite scores and flagged details of every document; empty ones never scored."""
        live = self._live(documents)
        scored = self._score_with_details(query, [documents[i] for i in live]) if live else _NONE
        return _every_document(len(documents), live, scored)

    async def _ajudge(self, query: str, documents: list[str]) -> tuple[list[float], Details]:
        """Async ``_judge``."""
        live = self._live(documents)
        scored = (
            await self._ascore_with_details(query, [documents[i] for i in live]) if live else _NONE
        )
        return _every_document(len(documents), live, scored)

    @property
    def pointwise(self) -> bool:
        """Whether a document's score depends only on the (query, document) pair.

        ``True`` promises that scoring a document alone, among other documents, or in another
        call gives the same score (up to float rounding of batched inference), so scores can
        be cached per document and work can be shared across queries. Cross-encoders,
        bi-encoders, causal-LM and pointwise LLM judges are pointwise; a listwise LLM (score =
        rank in the list), rank fusion, min-max/z-score fusion and a cascade that cuts by
        rank are not.

        Read by ``CachedReranker`` (refuses a reranker that is not pointwise), by
        ``rerankkit.eval._runs.rerank_run`` (batches a whole run through ``score_many`` only
        when pointwise) and by ``rerankkit demo`` (puts a score cache in front only when
        pointwise).

        The default is ``False``: a reranker claims it only when it knows it. A subclass
        whose scores are per document overrides this property.

        Example:
            >>> from rerankkit.testing import FixedScoreReranker, KeywordReranker
            >>> KeywordReranker().pointwise, FixedScoreReranker([1.0]).pointwise
            (True, False)
        """
        return False

    @property
    def probability_scores(self) -> bool:
        """Whether scores are on a probability scale, in [0, 1].

        ``True`` for a :class:`rerankkit.CalibratedReranker` (fitted on judged data), a
        cross-encoder with a sigmoid activation, a causal LM scored by P(yes) and a yes/no
        LLM judge (probabilities by construction, not calibrated on your data). ``False``
        for cosines, raw logits, MaxSim sums, ranks, fusion scores and LLM grades.
        ``min_relevance`` needs more: :attr:`calibrated_scores`.

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> KeywordReranker().probability_scores
            False
        """
        return False

    @property
    def calibrated_scores(self) -> bool:
        """Whether scores are calibrated P(relevant), fitted on judged data.

        ``True`` only for a :class:`rerankkit.CalibratedReranker` (spec option
        ``?calibration=CAL.json``) and wrappers around one. ``min_relevance`` is refused on a
        reranker without it, a sigmoid cross-encoder or a P(yes) included: a [0, 1] scale is
        not a calibrated probability (raw sigmoid ECE 0.499 on NovelEval, BENCHMARKS.md).

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> KeywordReranker().calibrated_scores
            False
        """
        return False

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to ``query``, in input order.

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> KeywordReranker().score("cat", ["a dog", "a cat"])
            [0.0, 1.0]
        """
        return self._judge(check_query(query), check_documents(documents))[0]

    def score_many(self, groups: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """``score`` for several ``(query, documents)`` groups in one call.

        The result equals ``[self.score(q, docs) for q, docs in groups]`` (up to float
        rounding of batched inference): validation, empty groups, empty documents (never
        scored, ``LOWEST_SCORE``) and the NaN rule (NaN becomes ``LOWEST_SCORE``, with a
        warning) are the same. Pointwise backends share the work
        across groups (a cross-encoder tokenises and length-sorts every pair together; a
        bi-encoder embeds each unique text once); the others score group by group.

        Args:
            groups: ``(query, documents)`` pairs; a group with no documents scores ``[]``.

        Returns:
            One list of scores per group, in input order, on the backend's score scale.

        Raises:
            TypeError: ``groups`` is not a sequence of pairs, or a query or document is not
                a ``str`` (the message names the group and position).
            ValueError: A query is empty or whitespace.

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> groups = [("cat", ["a cat", "dog"]), ("dog", []), ("dog", ["dog"])]
            >>> KeywordReranker().score_many(groups)
            [[1.0, 0.0], [], [1.0]]
        """
        return self._score_groups(_check_groups(groups))

    def _score_groups(self, checked: list[Group]) -> list[list[float]]:
        """``score_many`` after its checks: the groups are trusted."""
        lives = [self._live(documents) for _, documents in checked]
        work = [i for i, live in enumerate(lives) if live]
        groups_to_score = [(checked[i][0], [checked[i][1][p] for p in lives[i]]) for i in work]
        scored = self._score_many_with_details(groups_to_score) if work else []
        if len(scored) != len(work):
            raise RuntimeError(f"backend returned {len(scored)} score lists for {len(work)} groups")
        by_group = dict(zip(work, scored, strict=True))
        return [
            _every_document(len(documents), lives[i], by_group.get(i, _NONE))[0]
            for i, (_, documents) in enumerate(checked)
        ]

    async def ascore(self, query: str, documents: Sequence[str]) -> list[float]:
        """Async ``score``."""
        return (await self._ajudge(check_query(query), check_documents(documents)))[0]

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
        min_relevance: float | None = None,
        on_no_relevant: str = "empty",
    ) -> list[RerankResult]:
        """Documents' positions sorted by relevance, best first.

        Args:
            query: The search query.
            documents: Candidate texts; results refer to them by position. Empty or
                whitespace texts are never sent to the model: they score ``LOWEST_SCORE``,
                rank last and carry ``{"empty_document": True}`` in their details.
            top_n: Keep at most this many (``None`` keeps all).
            score_threshold: Keep only ``score >= score_threshold`` (applied before ``top_n``).
            min_relevance: The adaptive cut: keep only documents with P(relevant) >=
                ``min_relevance`` (in [0, 1]), then ``top_n`` as a ceiling. Needs
                calibrated scores (:attr:`calibrated_scores`: calibrate first).
            on_no_relevant: When no document reaches ``min_relevance``: ``"empty"``
                returns ``[]`` (abstain), ``"best"`` the best one with
                ``details["below_min_relevance"] = True``.

        Returns:
            Results best first; every score is finite. A document whose scoring failed
            scores ``LOWEST_SCORE``, ranks last and carries ``rerank_failed``/``rerank_error``.

        Raises:
            ValueError: ``min_relevance`` on a reranker whose scores are not calibrated
                (the message says how to calibrate), or out of [0, 1].

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> [r.index for r in KeywordReranker().rerank("cat", ["dog", "cat"])]
            [1, 0]
        """
        cut = check_relevance_cut(self, min_relevance, on_no_relevant)
        return self._rerank_checked(*_checked(query, documents, top_n, score_threshold), cut)

    async def arerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
        min_relevance: float | None = None,
        on_no_relevant: str = "empty",
    ) -> list[RerankResult]:
        """Async ``rerank``; never blocks the event loop."""
        cut = check_relevance_cut(self, min_relevance, on_no_relevant)
        checked = _checked(query, documents, top_n, score_threshold)
        return await self._arerank_checked(*checked, cut)

    def _rerank_checked(
        self,
        query: str,
        documents: list[str],
        top_n: int | None,
        score_threshold: float | None,
        cut: RelevanceCut | None = None,
    ) -> list[RerankResult]:
        """``rerank`` after its checks: the arguments are trusted (callers that checked them,
        such as a cascade's stages and the adapters, enter here)."""
        return self._cut(*self._judge(query, documents), top_n, score_threshold, cut)

    async def _arerank_checked(
        self,
        query: str,
        documents: list[str],
        top_n: int | None,
        score_threshold: float | None,
        cut: RelevanceCut | None = None,
    ) -> list[RerankResult]:
        """Async ``_rerank_checked``."""
        judged = await self._ajudge(query, documents)
        return self._cut(*judged, top_n, score_threshold, cut)

    def _cut(
        self,
        scores: list[float],
        details: Details,
        top_n: int | None,
        threshold: float | None,
        cut: RelevanceCut | None,
    ) -> list[RerankResult]:
        """``_select``, then the adaptive cut (``top_n`` applies after it, as a ceiling)."""
        if cut is None:
            return self._select(scores, details, top_n, threshold)
        ranked = self._select(scores, details, None, threshold)
        return relevance_cut(ranked, cut.min_relevance, cut.on_no_relevant, top_n)

    def _select(
        self, scores: list[float], details: Details, top_n: int | None, threshold: float | None
    ) -> list[RerankResult]:
        """Order, threshold and cut. A backend that returns only some documents by design
        (a cascade drops what its earlier stages cut) narrows the candidates, then calls this."""
        return rank(scores, top_n=top_n, score_threshold=threshold, details=details)

    @property
    def cache_key(self) -> str:
        """Identity of this reranker's scores in a shared ``rerankkit.ScoreCache``.

        Two rerankers with equal keys must score every (query, document) alike. The default
        is unique to this instance; a backend whose scores depend only on its settings may
        override it (model path, revision, max_length, ...) so equal instances share entries.
        """
        # setdefault: the first key made stays, so two threads racing here agree on one key
        unique = f"{type(self).__qualname__}:{uuid.uuid4().hex}"
        return str(self.__dict__.setdefault("_rerankkit_cache_key", unique))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DetailedReranker(Reranker):
    """A reranker whose hook is ``_score_with_details`` (scores and details in one answer):
    its ``_score`` is that answer's scores. The composites (fusion, cascade, cache, batching)
    and the LLM rerankers are these."""

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        return self._score_with_details(query, documents)[0]

    @abstractmethod
    def _score_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        """Scores (finite or NaN) and details of ``documents``, in input order."""


class GroupBatchedReranker(DetailedReranker):
    """A backend whose one batched pass scores every group: it implements only
    ``_score_many_with_details``, and a single query is scored as a group of one.

    The model backends (cross-encoder, bi-encoder, causal LM, late interaction) batch across
    queries this way, and the pointwise LLM judge sends every group's prompts to one pool of
    calls, so their per-query and ``score_many`` scores come from the same code.
    """

    def _score_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        return self._score_many_with_details([(query, documents)])[0]

    @abstractmethod
    def _score_many_with_details(
        self, groups: list[Group]
    ) -> list[tuple[Sequence[float], Details]]:
        """Scores (and details) of every group, in order; see ``Reranker``."""


class WrappingReranker(DetailedReranker):
    """A reranker around another, ``self.reranker`` (a cache, a batcher): it scores what the
    wrapped one scores, so its capability flags and its cache identity are the wrapped one's.
    It implements ``_score_with_details`` (and its async and many-groups twins as it needs)."""

    reranker: Reranker

    @property
    def pointwise(self) -> bool:
        return self.reranker.pointwise

    @property
    def probability_scores(self) -> bool:
        return self.reranker.probability_scores

    @property
    def calibrated_scores(self) -> bool:
        return self.reranker.calibrated_scores

    @property
    def cache_key(self) -> str:
        return self.reranker.cache_key
