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


def columns_for(loss: Loss) -> tuple[str, ...]:
    """The dataset columns, in order, that the loss ``loss`` reads (the keys of :func:`rows_for`).

    Example:
        >>> columns_for("listwise")
        ('query', 'documents', 'labels')
    """
    return {
        "bce": ("query", "passage", "label"),
        "margin": ("query", "positive", "negative"),
        "marginmse": ("query", "positive", "negative", "label"),
        "listwise": ("query", "documents", "labels"),
    }[loss]


def rows_for(
    loss: Loss, queries: Sequence[TrainQuery], *, teacher: Sequence[Sequence[float]] = ()
) -> dict[str, list[Any]]:
    """The columns of :func:`columns_for` for ``loss``, one row per example.

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
    rows: dict[str, list[Any]] = {name: [] for name in columns_for(loss)}

    def add(*row: Any) -> None:
        for column, value in zip(rows.values(), row, strict=True):
            column.append(value)

    for position, q in enumerate(queries):
        if loss == "bce":
            for passages, label in ((q.positives, 1.0), (q.negatives, 0.0)):
                for passage in passages:
                    add(q.query, passage, label)
        elif loss == "listwise" and q.negatives:
            grades = [float(g) for g in q.positive_grades()]
            add(q.query, [*q.positives, *q.negatives], grades + [0.0] * len(q.negatives))
        elif loss in ("margin", "marginmse"):  # every (positive, negative) pair of the query
            for i, positive in enumerate(q.positives):
                for j, negative in enumerate(q.negatives):
                    if loss == "margin":
                        add(q.query, positive, negative)
                    else:  # label: the teacher's margin, t(q, positive) - t(q, negative)
                        scores = teacher[position]
                        add(q.query, positive, negative, scores[i] - scores[len(q.positives) + j])
    return rows
