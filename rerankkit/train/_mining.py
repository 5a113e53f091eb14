"""Hard negatives from the first stage the user retrieves with, never a judged positive.

The first-stage run (BM25, dense or hybrid: :func:`rerankkit.eval._runs.first_stage_run`) ranks
the corpus for each training query; the negatives are taken from a window of its ranks (1-based,
both ends included), skipping every document judged relevant. Starting the window below the top
(e.g. rank 10) lowers the chance of an unjudged relevant document -- a false negative -- at the
price of easier negatives (the trade-off sentence-transformers' ``mine_hard_negatives`` makes
with ``range_min``).

Example:
    >>> run = {"q": {"d1": 9.0, "d2": 8.0, "d3": 7.0, "d4": 6.0}}
    >>> mine_negatives(run, {"q": {"d2": 1}}, ranks=(1, 4), count=2)
    {'q': ['d1', 'd3']}
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rerankkit.eval._runs import candidates
from rerankkit.train._config import Sampling
from rerankkit.train._data import TrainQuery


def mine_negatives(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    ranks: tuple[int, int] = (10, 100),
    count: int = 5,
    sampling: Sampling = "top",
    seed: int = 0,
) -> dict[str, list[str]]:
    """Up to ``count`` negative document ids per query from ranks ``ranks`` of ``run``.

    Args:
        run: ``{query id: {doc id: score}}`` (ranked as trec_eval does, see
            :func:`rerankkit.eval._runs.candidates`).
        qrels: ``{query id: {doc id: grade}}``; every document graded > 0 for the query is
            skipped (judged non-relevant ones, grade 0, may be chosen).
        ranks: The 1-based window ``(first, last)``, both included.
        count: Negatives per query (fewer when the window holds fewer non-positives).
        sampling: ``"top"``: the best-ranked non-positives of the window (hardest);
            ``"random"``: a uniform sample of them, seeded, listed in rank order.
        seed: Seed of ``"random"`` (each query gets its own stream, so adding queries does not
            change the others' negatives).

    Returns:
        ``{query id: [doc id, ...]}`` in rank order, for every query of ``run``.

    """
    first, last = ranks
    ranked = candidates(run, last)
    mined: dict[str, list[str]] = {}
    for qid, doc_ids in ranked.items():
        judged = qrels.get(qid, {})
        window = [d for d in doc_ids[first - 1 : last] if judged.get(d, 0) <= 0]
        if sampling == "top" or len(window) <= count:
            mined[qid] = window[:count]
        else:
            chosen = set(random.Random(f"{seed}:{qid}").sample(range(len(window)), count))
            mined[qid] = [d for position, d in enumerate(window) if position in chosen]
    return mined


def positive_copies(
    run: Mapping[str, Mapping[str, float]],
    queries: Sequence[TrainQuery],
    corpus: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
) -> dict[str, set[str]]:
    """Per training query, the unjudged documents of its run whose text equals one of its
    positives (an exact copy under another corpus id; whitespace collapsed).

    Marked relevant for mining, they are skipped like judged positives and the window's next
    document takes their place; only the run's documents are compared, so a corpus of
    millions costs no text index.

    Example:
        >>> q = TrainQuery("q", ("Paris is the capital.",), query_id="q")
        >>> corpus = {"p": "Paris is the capital.", "copy": "Paris  is the capital.", "x": "Lyon"}
        >>> positive_copies({"q": {"copy": 2.0, "x": 1.0}}, [q], corpus, {"q": {"p": 1}})
        {'q': {'copy'}}
    """
    copies: dict[str, set[str]] = {}
    for query in queries:
        texts = {" ".join(text.split()) for text in query.positives}
        judged = qrels.get(query.query_id, {})
        found = {
            doc_id
            for doc_id in run.get(query.query_id, {})
            if doc_id not in judged and " ".join(corpus[doc_id].split()) in texts
        }
        if found:
            copies[query.query_id] = found
    return copies


def add_negatives(
    queries: Sequence[TrainQuery], mined: Mapping[str, Sequence[str]], corpus: Mapping[str, str]
) -> list[TrainQuery]:
    """New training queries with the mined negatives appended (a document already among a
    query's negatives is not added twice; everything else, grades included, is kept).

    Example:
        >>> q = TrainQuery("claim", ("supporting abstract",), query_id="1")
        >>> add_negatives([q], {"1": ["d9"]}, {"d9": "unrelated abstract"})[0].negatives
        ('unrelated abstract',)
    """
    out = []
    for query in queries:
        ids = list(query.negative_ids)
        texts = list(query.negatives)
        for doc_id in mined.get(query.query_id, ()):
            if doc_id not in ids:
                ids.append(doc_id)
                texts.append(corpus[doc_id])
        out.append(replace(query, negatives=tuple(texts), negative_ids=tuple(ids)))
    return out
