"""Teacher scores for distillation: any rerankkit reranker (or several, fused) scores the
training passages of each query.

One spec builds that reranker (``cross-encoder:...``, ``embedding:``, an LLM reranker, a
remote API); several specs are fused with :class:`rerankkit.compose._fusion.FusionReranker`
(``method="score"``, ``normalization="zscore"``): each teacher's scores are standardised within
the query's passages and summed, so a logit-scale cross-encoder and a cosine-scale bi-encoder
count alike and the margins stay on a logit-like scale (a few units), the scale
``MarginMSELoss`` compares the student's raw-logit margins with.

Example:
    >>> from rerankkit.train._data import TrainQuery
    >>> q = TrainQuery("red apple", ("a red apple",), ("a green pear",))
    >>> teacher_scores(build_teacher(["keyword:"]), [q])
    [[2.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rerankkit._base import Reranker
from rerankkit._specs import build_reranker
from rerankkit.compose._fusion import FusionReranker
from rerankkit.errors import TrainingError
from rerankkit.train._data import TrainQuery


def build_teacher(specs: Sequence[str]) -> Reranker:
    """The teacher reranker: one spec as is, several fused by z-scored score sum."""
    rerankers = [build_reranker(spec) for spec in specs]
    if len(rerankers) == 1:
        return rerankers[0]
    return FusionReranker(rerankers, method="score", normalization="zscore")


def teacher_scores(teacher: Reranker, queries: Sequence[TrainQuery]) -> list[list[float]]:
    """Per query, the teacher's scores of its positives then its negatives.

    Pointwise teachers score all queries in one batched ``score_many`` call; others query by
    query (the core decides). A score the teacher could not produce (``-inf``/NaN) would make a
    meaningless margin, so it raises instead.

    Raises:
        TrainingError: A teacher score is not finite, naming the query.
    """
    groups = [(q.query, [*q.positives, *q.negatives]) for q in queries]
    scores = teacher.score_many(groups)
    out = []
    for q, row in zip(queries, scores, strict=True):
        values = [float(s) for s in row]
        if not all(math.isfinite(v) for v in values):
            raise TrainingError(
                f"teacher gave a non-finite score for query {q.query_id or q.query!r}"
            )
        out.append(values)
    return out
