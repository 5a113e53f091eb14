"""Training rows for each loss, from training queries (pure functions, plain Python columns).

=============  =====================================================================
loss           rows
=============  =====================================================================
``bce``        every (query, positive, 1.0) and (query, negative, 0.0)
``margin``     every (query, positive, negative) with the query's positives x negatives
``marginmse``  the same triples with ``label = t(q, positive) - t(q, negative)``
``listwise``   one row per query: (query, [positives..., negatives...], [grades..., 0.0...])
=============  =====================================================================

Example:
    >>> from rerankkit.train._data import TrainQuery
    >>> q = TrainQuery("claim", ("yes",), ("no1", "no2"))
    >>> rows_for("margin", [q])
    {'query': ['claim', 'claim'], 'positive': ['yes', 'yes'], 'negative': ['no1', 'no2']}
    >>> rows_for("marginmse", [q], teacher=[[3.0, 1.0, 2.5]])["label"]
    [2.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankkit.train._config import Loss
from rerankkit.train._data import TrainQuery


def rows_for(
    loss: Loss,
    queries: Sequence[TrainQuery],
    *,
    teacher: Sequence[Sequence[float]] | None = None,
) -> dict[str, list[Any]]:
    """The columns (as :func:`rerankkit.train._losses.columns_for` names them) for ``loss``.

    Queries without negatives give ``bce`` rows for their positives only and no rows for the
    pairwise and listwise losses (they have nothing to compare with). ``listwise`` labels are
    the positives' grades (:meth:`TrainQuery.positive_grades`), so graded judgments keep their
    order; the other losses treat every positive alike.

    Args:
        loss: One of :data:`rerankkit.train._losses.LOSSES`.
        queries: The training queries.
        teacher: ``marginmse`` only: per query, the teacher's scores of its positives then its
            negatives (see :func:`rerankkit.train._teacher.teacher_scores`).

    """
    if loss == "bce":
        bce: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
        for q in queries:
            for passages, label in ((q.positives, 1.0), (q.negatives, 0.0)):
                for passage in passages:
                    bce["query"].append(q.query)
                    bce["passage"].append(passage)
                    bce["label"].append(label)
        return bce
    if loss == "listwise":
        listwise: dict[str, list[Any]] = {"query": [], "documents": [], "labels": []}
        for q in queries:
            if q.negatives:
                listwise["query"].append(q.query)
                listwise["documents"].append([*q.positives, *q.negatives])
                grades = [float(g) for g in q.positive_grades()]
                listwise["labels"].append(grades + [0.0] * len(q.negatives))
        return listwise
    triples: dict[str, list[Any]] = {"query": [], "positive": [], "negative": []}
    margins: list[float] = []
    for position, q in enumerate(queries):
        for i, positive in enumerate(q.positives):
            for j, negative in enumerate(q.negatives):
                triples["query"].append(q.query)
                triples["positive"].append(positive)
                triples["negative"].append(negative)
                if teacher is not None and loss == "marginmse":
                    scores = teacher[position]
                    margins.append(float(scores[i]) - float(scores[len(q.positives) + j]))
    if loss == "marginmse":
        triples["label"] = margins
    return triples
