"""First-stage runs and reranking them: candidates, one reranker over a whole run, timing.

A run is ``{query id: {document id: score}}``. :func:`first_stage_run` builds one with BM25,
dense search or their fusion; :func:`candidates` cuts each query's top ``top_n`` as trec_eval
ranks them; :func:`rerank_run` reorders those candidates with a reranker and times it
(:func:`rerank_run_on_ray`: the same on a pool of Ray actors).

Example:
    >>> from rerankkit.eval import Dataset
    >>> from rerankkit.testing import KeywordReranker
    >>> data = Dataset("toy", corpus={"d1": "red apple", "d2": "green pear"},
    ...                queries={"q1": "pear"}, qrels={"q1": {"d2": 1}})
    >>> reranked, timing = rerank_run(KeywordReranker(), data, {"q1": {"d1": 2.0, "d2": 1.0}})
    >>> reranked, timing.pairs, timing.batched
    ({'q1': {'d1': 0.0, 'd2': 1.0}}, 2, True)
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerankkit._base import Reranker
from rerankkit._optional import require
from rerankkit._renamed import renamed_arguments
from rerankkit._validation import check_choice, check_int
from rerankkit.eval._datasets import Dataset, Run
from rerankkit.eval._retrieval import bm25_search, dense_search

if TYPE_CHECKING:
    from rerankkit._specs import RerankerSpec

logger = logging.getLogger(__name__)

FIRST_STAGES = ("bm25", "dense", "hybrid")
_PROGRESS_STEPS = 20  # score_many calls behind a progress bar of a batched run
# pytrec_eval needs finite scores: -inf (a cleaned NaN, a failed document) maps to the lowest,
# +inf (e.g. a custom failure_score) to the highest, so the order is the reranker's.
_LOWEST, _HIGHEST = -1e30, 1e30


# --------------------------------------------------------------------------- first stage


@renamed_arguments(k="top_n")
def first_stage_run(
    dataset: Dataset,
    method: str,
    top_n: int = 100,
    *,
    bm25_language: str | None = "english",
    encoder: Any = None,
    progress: bool | None = None,
) -> Run:
    """Retrieve ``top_n`` candidates per judged query with BM25, dense search, or their RRF.

    Args:
        dataset: The collection (only its judged queries are searched).
        method: ``"bm25"`` (bm25s), ``"dense"`` (bi-encoder, exact cosine), or ``"hybrid"``
            (reciprocal rank fusion of both, k=60).
        top_n: Candidates per query.
        bm25_language: Analyser language for BM25 (``None``: a plain regex tokenizer with no
            stemming or stopwords, the right choice for Korean and other unsupported scripts).
        encoder: Anything with ``embed(texts)`` for dense search; default the packaged
            all-MiniLM-L6-v2 bi-encoder.
        progress: A progress bar over the corpus embedding of dense search; ``None`` shows
            one when stderr is a terminal.

    Raises:
        ValueError: An unknown ``method`` or a ``top_n`` below 1.
        TypeError: ``k=`` (renamed ``top_n``).

    Example (``data`` from :func:`rerankkit.eval.load_beir`)::

        run = first_stage_run(data, "bm25", 100)
    """
    check_choice(method, "method", FIRST_STAGES)
    queries = {qid: dataset.queries[qid] for qid in dataset.judged_query_ids}
    runs: list[Any] = []  # retrieval's runs are keyed by the ids we pass: str here
    if method in ("bm25", "hybrid"):
        runs.append(bm25_search(dataset.corpus, queries, top_n, language=bm25_language))
    if method in ("dense", "hybrid"):
        if encoder is None:
            from rerankkit._specs import build_reranker

            encoder = build_reranker("embedding:")
        shown = _progress_enabled(progress)
        runs.append(dense_search(dataset.corpus, queries, top_n, encoder=encoder, progress=shown))
    if len(runs) == 1:
        return runs[0]  # type: ignore[no-any-return]
    from rerankkit.compose._fusion import fuse_runs

    return fuse_runs(runs, top_n=top_n)  # type: ignore[return-value]


@renamed_arguments(depth="top_n")
def candidates(run: Mapping[str, Mapping[str, float]], top_n: int) -> dict[str, list[str]]:
    """Each query's top ``top_n`` document ids, best first.

    Ties are broken as trec_eval does (document id descending), so the candidate set is the
    one the first stage is evaluated on.

    Raises:
        TypeError: ``top_n`` is not an int (or ``depth=``, renamed ``top_n``).
        ValueError: ``top_n`` is below 1.

    Example:
        >>> candidates({"q": {"a": 1.0, "b": 3.0, "c": 1.0}}, 2)
        {'q': ['b', 'c']}
    """
    top_n = check_int(top_n, "top_n", minimum=1)
    ranked: dict[str, list[str]] = {}
    for qid, scores in run.items():
        order = sorted(scores, reverse=True)  # doc id descending ...
        order.sort(key=lambda doc_id: scores[doc_id], reverse=True)  # ... then score (stable)
        ranked[qid] = order[:top_n]
    return ranked


# --------------------------------------------------------------------------- reranking


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock cost of reranking a run (model loading excluded).

    Attributes:
        queries: Queries reranked.
        pairs: (query, document) pairs scored.
        seconds: Total scoring time.
        latencies_ms: Per-query scoring time, in run order.
        batched: All queries were scored in one ``score_many`` call (work shared across
            queries), so the per-query latencies are the total divided evenly: throughput,
            not a latency a single request would see.
    """

    queries: int
    pairs: int
    seconds: float
    latencies_ms: tuple[float, ...] = ()
    batched: bool = False

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else math.inf

    @property
    def latency_ms_mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0

    def latency_ms_quantile(self, q: float) -> float:
        """Latency quantile (nearest rank), e.g. ``q=0.95``."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "pairs": self.pairs,
            "seconds": round(self.seconds, 4),
            # null, not Infinity, when too fast to time: the report must stay JSON-strict
            "pairs_per_second": (
                round(self.pairs_per_second, 1) if math.isfinite(self.pairs_per_second) else None
            ),
            "latency_ms_mean": round(self.latency_ms_mean, 2),
            "latency_ms_p50": round(self.latency_ms_quantile(0.5), 2),
            "latency_ms_p95": round(self.latency_ms_quantile(0.95), 2),
            "batched_across_queries": self.batched,
        }


def _progress_enabled(progress: bool | None) -> bool:
    # Default: bars only for a person watching a terminal; logs, CI and notebooks stay clean.
    return sys.stderr.isatty() if progress is None else progress


def _progress_bar(total: int, desc: str) -> Any:
    tqdm = require("tqdm", "eval").tqdm
    return tqdm(total=total, desc=desc, unit="query", leave=False, file=sys.stderr)


PROGRESS_LOGGER = logging.getLogger("rerankkit.progress")
"""Progress lines of long work when no progress bar is drawn (stderr is not a terminal):
``rerankkit`` commands show this logger at INFO by default (``-q`` hides it)."""


class ProgressLog:
    """Logs ``DESC: DONE/TOTAL UNIT (P%), S s elapsed, ~R s left`` each time the work passes
    another twentieth of ``total`` (and at the end): at most ~21 lines, whatever the length.

    Example:
        >>> log = ProgressLog("rerank", 40, "queries")
        >>> [log.done(n) for n in (1, 2, 3)] and log.next_line
        4
    """

    STEPS = 20

    def __init__(self, desc: str, total: int, unit: str) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.start = time.perf_counter()
        self.next_line = max(1, math.ceil(total / self.STEPS))
        PROGRESS_LOGGER.info("%s: %d %s to go", desc, total, unit)

    def done(self, count: int) -> None:
        """Record that ``count`` of ``total`` are done; log when a step is passed."""
        if count < self.next_line and count < self.total:
            return
        elapsed = time.perf_counter() - self.start
        left = elapsed / count * (self.total - count) if count else 0.0
        PROGRESS_LOGGER.info(
            "%s: %d/%d %s (%d%%), %.0f s elapsed, ~%.0f s left",
            self.desc,
            count,
            self.total,
            self.unit,
            100 * count // max(1, self.total),
            elapsed,
            left,
        )
        step = max(1, math.ceil(self.total / self.STEPS))
        self.next_line = (count // step + 1) * step


def progress_slices(count: int, steps: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges cutting ``count`` items into at most ``steps`` near-equal parts.

    Example:
        >>> progress_slices(10, 4), progress_slices(3, 8), progress_slices(0, 4)
        ([(0, 2), (2, 5), (5, 7), (7, 10)], [(0, 1), (1, 2), (2, 3)], [])
    """
    parts = max(1, min(steps, count))
    edges = [count * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def rerank_groups(
    dataset: Dataset, ranked: Mapping[str, Sequence[str]], *, only_judged: bool = True
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The queries to rerank and their ``(query text, candidate texts)`` groups, in run order.

    ``ranked`` is :func:`candidates`' output. Queries without candidates, unknown to the
    dataset, or (with ``only_judged``) without judgments are left out: they cannot change a
    metric.

    Example:
        >>> from rerankkit.eval._datasets import Dataset
        >>> data = Dataset("toy", {"a": "x", "b": "y"}, {"q": "x", "r": "y"}, {"q": {"b": 1}})
        >>> rerank_groups(data, {"q": ["b", "a"], "r": ["a"]})
        (['q'], [('x', ['y', 'x'])])
    """
    wanted = dataset.qrels if only_judged else dataset.queries
    query_ids = [qid for qid in ranked if qid in wanted and qid in dataset.queries and ranked[qid]]
    groups = [
        (dataset.queries[qid], [dataset.corpus[doc_id] for doc_id in ranked[qid]])
        for qid in query_ids
    ]
    return query_ids, groups


def scored_run(
    ranked: Mapping[str, Sequence[str]],
    query_ids: Sequence[str],
    scores: Sequence[Sequence[float]],
) -> Run:
    """``{qid: {docid: score}}`` from each query's candidates and their scores, in order.

    ``-inf`` becomes ``-1e30`` and ``+inf`` ``1e30``: pytrec_eval needs finite scores.

    Example:
        >>> scored_run({"q": ["a", "b"]}, ["q"], [[0.5, float("-inf")]])
        {'q': {'a': 0.5, 'b': -1e+30}}
    """
    return {
        qid: {
            doc_id: score if math.isfinite(score) else (_HIGHEST if score > 0 else _LOWEST)
            for doc_id, score in zip(ranked[qid], row, strict=True)
        }
        for qid, row in zip(query_ids, scores, strict=True)
    }


@renamed_arguments(depth="top_n")
def rerank_run(
    reranker: Reranker,
    dataset: Dataset,
    run: Mapping[str, Mapping[str, float]],
    *,
    top_n: int = 100,
    only_judged: bool = True,
    batch_queries: bool | None = None,
    progress: bool | None = None,
    desc: str = "rerank",
) -> tuple[Run, Timing]:
    """Rerank each query's top ``top_n`` candidates of ``run``.

    With ``only_judged`` (the default) queries without judgments are skipped: they cannot
    change any metric.

    Scoring goes through ``reranker.score_many``, so validation and the NaN rule (NaN ranks
    last, with a warning) are the core's. A pointwise reranker (``reranker.pointwise``) scores
    the whole run in one call by default (``batch_queries=None``): a cross-encoder
    length-sorts every pair of every query into shared batches, a bi-encoder embeds each
    unique text once; the timing then reports throughput with amortised latencies
    (``Timing.batched``). A reranker that is not pointwise (a listwise LLM, a fusion, a
    cascade), or ``batch_queries=False``, is called once per query, so each latency is what
    one RAG request pays.

    Args:
        reranker: Any reranker.
        dataset: The collection: query and document texts, and the qrels.
        run: The first-stage run to rerank.
        top_n: Candidates reranked per query (trec_eval's order; see :func:`candidates`).
        only_judged: Skip queries without judgments.
        batch_queries: ``None`` (batch when pointwise), ``True`` (batch; the reranker must
            be pointwise) or ``False`` (one call per query).
        progress: A progress bar over queries; ``None`` shows one when stderr is a
            terminal. With a bar, a batched run is scored in 20 ``score_many`` calls (one bar
            step each) instead of one.
        desc: The label for the progress bar and the log line.

    Returns:
        The reranked run ``{qid: {docid: score}}`` (only the ``top_n`` reranked documents;
        a ``-inf`` score becomes ``-1e30`` and ``+inf`` ``1e30`` for pytrec_eval) and its
        :class:`Timing`.

    Raises:
        TypeError: ``batch_queries=True`` for a reranker that is not pointwise, a ``top_n``
            that is not an int, or ``depth=`` (renamed ``top_n``).
        ValueError: A bad ``top_n`` or ``batch_queries``.

    Example:
        >>> from rerankkit.eval import Dataset
        >>> from rerankkit.testing import FixedScoreReranker
        >>> data = Dataset("toy", {"a": "x", "b": "y"}, {"q": "x"}, {"q": {"b": 1}})
        >>> run, timing = rerank_run(FixedScoreReranker([0.1, 0.9]), data, {"q": {"a": 2, "b": 1}})
        >>> run, timing.batched
        ({'q': {'a': 0.1, 'b': 0.9}}, False)
    """
    ranked = candidates(run, top_n)
    batch_queries = check_choice(batch_queries, "batch_queries", (None, True, False))
    batched = reranker.pointwise if batch_queries is None else batch_queries
    if batched and not reranker.pointwise:
        raise TypeError(  # the reranker is the wrong kind, as CachedReranker says too
            f"batch_queries=True needs a pointwise reranker; {type(reranker).__name__} does not "
            "declare itself pointwise (a document's score may depend on the other documents), "
            "so it is scored per query"
        )
    query_ids, groups = rerank_groups(dataset, ranked, only_judged=only_judged)
    shown = _progress_enabled(progress)
    # Batched: one score_many call, or with a progress bar a few (each slice still shares
    # batches across its queries, and a pair's score does not depend on its batch).
    # Otherwise one call per query, each timed: the latency one RAG request pays.
    # Without a bar, the same steps go to the log (PROGRESS_LOGGER) when it is listened to (the
    # CLI shows it), so a run whose stderr is a file or a CI log says how far along it is.
    logged = not shown and PROGRESS_LOGGER.isEnabledFor(logging.INFO)
    if batched:
        slices = progress_slices(len(groups), _PROGRESS_STEPS if shown or logged else 1)
    else:
        slices = [(i, i + 1) for i in range(len(groups))]
    bar = _progress_bar(len(groups), desc) if shown else None
    log = ProgressLog(desc, len(groups), "queries") if logged else None
    scores: list[list[float]] = []
    slice_seconds: list[float] = []
    for first, last in slices:
        start = time.perf_counter()
        scores.extend(reranker.score_many(groups[first:last]))
        slice_seconds.append(time.perf_counter() - start)
        if bar is not None:
            bar.update(last - first)
        if log is not None:
            log.done(last)
    if bar is not None:
        bar.close()
    seconds = sum(slice_seconds)
    if batched:
        latencies = (seconds * 1000.0 / max(1, len(query_ids)),) * len(query_ids)
    else:
        latencies = tuple(1000.0 * part for part in slice_seconds)
    pairs = sum(len(row) for row in scores)
    timing = Timing(len(query_ids), pairs, seconds, latencies, batched=batched)
    logger.info(
        "%s: %d queries, %d pairs, %.1f pairs/s%s",
        desc,
        timing.queries,
        pairs,
        timing.pairs_per_second,
        " (batched across queries)" if batched else "",
    )
    return scored_run(ranked, query_ids, scores), timing


@renamed_arguments(depth="top_n")
def rerank_run_on_ray(
    spec: str | RerankerSpec,
    dataset: Dataset,
    run: Mapping[str, Mapping[str, float]],
    *,
    top_n: int = 100,
    only_judged: bool = True,
    batch_size: int = 8,
    concurrency: int | tuple[int, int] | None = None,
    num_gpus: float = 0,
    desc: str = "rerank",
) -> tuple[Run, Timing]:
    """Rerank each query's top ``top_n`` candidates of ``run`` on Ray (``rerankkit eval --ray``).

    The rows go to a pool of Ray actors (:func:`rerankkit.distributed.rerank_dataset`), one
    row per query, each actor loading the model once. Ray runs locally, or on the cluster
    ``RAY_ADDRESS`` or an earlier ``ray.init`` points at.

    The candidates, the queries left out and the run returned are those of
    :func:`rerankkit.eval.rerank_run`, and so are the scores (up to float rounding of
    differently padded model batches). Timing is the wall clock of the whole Ray job,
    starting the actors and loading the model in each included (``Timing.batched`` is
    ``True``: latencies are the total spread evenly over the queries).

    Args:
        spec: The reranker each actor builds (a spec string, see :mod:`rerankkit._specs`).
        dataset: The collection.
        run: The first-stage run to rerank.
        top_n: Candidates reranked per query.
        only_judged: Skip queries without judgments.
        batch_size: Queries per actor call.
        concurrency: Actors (see :func:`rerankkit.distributed.rerank_dataset`).
        num_gpus: GPUs per actor.
        desc: The label for the log line.

    Raises:
        RuntimeError: A query failed on its actor (every failed query id and error named).
        ValueError: A bad spec or argument.
        TypeError: ``depth=`` (renamed ``top_n``).
    """
    ray_data = require("ray.data", "ray")
    from rerankkit.distributed import rerank_dataset

    ranked = candidates(run, top_n)
    query_ids, groups = rerank_groups(dataset, ranked, only_judged=only_judged)
    rows = [
        {"position": i, "query": query, "documents": documents}
        for i, (query, documents) in enumerate(groups)
    ]
    start = time.perf_counter()
    output = rerank_dataset(
        ray_data.from_items(rows),
        spec,
        query_column="query",
        documents_column="documents",
        batch_size=batch_size,
        concurrency=concurrency,
        num_gpus=num_gpus,
    ).take_all()
    seconds = time.perf_counter() - start
    failed = [row for row in output if row["rerank_error"] is not None]
    if failed:
        raise RuntimeError(
            f"{desc}: {len(failed)} queries failed on Ray: "
            + "; ".join(f"{query_ids[row['position']]}: {row['rerank_error']}" for row in failed)
        )
    scores: list[list[float]] = [[] for _ in groups]
    for row in output:  # rerank_dataset keeps every row; its scores are best first
        by_index = dict(zip(row["ranked_indices"], row["relevance_scores"], strict=True))
        scores[row["position"]] = [by_index[i] for i in range(len(row["documents"]))]
    pairs = sum(len(documents) for _, documents in groups)
    latency = seconds * 1000.0 / max(1, len(query_ids))
    timing = Timing(len(query_ids), pairs, seconds, (latency,) * len(query_ids), batched=True)
    logger.info("%s on Ray: %d queries, %.1f pairs/s", desc, len(query_ids), pairs / seconds)
    return scored_run(ranked, query_ids, scores), timing
