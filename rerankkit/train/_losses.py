"""Training losses by name, and the pairwise margin (hinge) loss sentence-transformers lacks.

``s(q, d)`` is the model's raw logit for a pair, ``t(q, d)`` the teacher's score, ``d+`` a
relevant and ``d-`` a non-relevant passage of query ``q``.

- ``bce``: ``-[y log sigmoid(s) + (1 - y) log(1 - sigmoid(s))]``. Labels only; keeps the scores
  calibrated (a 0.5 threshold still means something). The usual default.
- ``margin``: ``max(0, m - (s(q, d+) - s(q, d-)))``. Only the order matters; it stops pushing a
  pair once it is ``m`` logits apart, so easy pairs cost nothing and scores drift off scale.
- ``marginmse``: ``((s(q, d+) - s(q, d-)) - (t(q, d+) - t(q, d-)))^2``. When a stronger teacher
  exists (a large cross-encoder, an LLM reranker, a remote API): copies how much better one
  passage is, not only which; a mined negative the teacher scores high (likely an unjudged
  relevant passage) is not pushed below the positive.
- ``listwise``: LambdaLoss with NDCG-Loss2++ weights over each query's passages. Several judged
  (graded) passages per query; optimises a surrogate of nDCG itself.

Rows: ``bce`` (query, passage, label); ``margin`` (query, positive, negative); ``marginmse`` the
same plus the teacher margin; ``listwise`` (query, [passages], [labels]). ``bce``,
``marginmse`` and ``listwise`` are sentence-transformers' own ``BinaryCrossEntropyLoss``,
``MarginMSELoss`` (Hofstaetter et al. 2020, arXiv:2010.02666) and ``LambdaLoss`` (Wang et al.
2018); ``margin`` is :class:`MarginRankingLoss` below, with their interface, because
sentence-transformers has no hinge loss for cross-encoders (its ``RankNetLoss`` is the
logistic form, ``log(1 + exp(-(s+ - s-)))``, which never stops pushing).
"""

from __future__ import annotations

from typing import Any, get_args

import torch
from sentence_transformers.cross_encoder import CrossEncoder
from sentence_transformers.cross_encoder import losses as st_losses
from sentence_transformers.util import batch_to_device
from torch import Tensor, nn

from rerankkit.train._config import Loss

LOSSES: tuple[Loss, ...] = get_args(Loss)


class MarginRankingLoss(nn.Module):
    """Pairwise margin ranking (hinge) loss for a 1-logit cross-encoder.

    ``L = mean over (q, d+, d-) of max(0, margin - (s(q, d+) - s(q, d-)))``

    with ``s`` the raw logit. It is zero once every positive outscores its negative by at least
    ``margin`` logits and pushes only the pairs that do not, which is what "widen the gap
    between positive and negative documents" asks for; it needs no teacher and no calibrated
    labels. The same formula as :class:`torch.nn.MarginRankingLoss` with target 1, which does
    the arithmetic here. Rows may carry several negatives, ``(query, positive, negative_1, ...,
    negative_n)``: each (positive, negative_i) pair is one term of the mean.

    Interface as sentence-transformers' cross-encoder losses (``forward(inputs, labels,
    prompt=None, task=None)``; ``labels`` are ignored and may be ``None``), so
    ``CrossEncoderTrainer`` uses it unchanged.

    Built by :func:`build_loss` from checked values: a 1-logit model
    (:func:`rerankkit.train._model.load_student`) and ``TrainConfig.margin`` (>= 0); the
    trainer hands it the three columns of :func:`rerankkit.train._examples.columns_for`.

    Args:
        model: The ``CrossEncoder`` being trained, with one output label.
        margin: The gap in logits a positive must keep over a negative (default 1.0).

    Example:
        >>> import torch
        >>> scores = torch.tensor([3.0, 0.5, 1.0])      # s(q, d+) for three triples
        >>> negatives = torch.tensor([1.0, 0.0, 1.5])   # s(q, d-)
        >>> round(float(hinge(scores, negatives, margin=1.0)), 6)   # (0 + 0.5 + 1.5) / 3
        0.666667
    """

    def __init__(self, model: CrossEncoder, margin: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.margin = margin

    def forward(
        self,
        inputs: list[list[str]],
        labels: Tensor | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        queries, *columns = inputs  # the positives, then one column per negative
        scores = [self._logits(queries, column, prompt, task) for column in columns]
        negative = torch.stack(scores[1:], dim=1)
        return hinge(scores[0].unsqueeze(1).expand_as(negative), negative, self.margin)

    def _logits(
        self, queries: list[str], passages: list[str], prompt: str | None, task: str | None
    ) -> Tensor:
        pairs = list(zip(queries, passages, strict=True))
        features = batch_to_device(
            self.model.preprocess(pairs, prompt=prompt, task=task), self.model.device
        )
        scores: Tensor = self.model(features)["scores"]
        return scores.view(-1)

    def get_config_dict(self) -> dict[str, Any]:
        return {"margin": self.margin}


def hinge(positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    """``mean(max(0, margin - (positive - negative)))`` over all elements (float32).

    Example:
        >>> import torch
        >>> float(hinge(torch.tensor([2.0]), torch.tensor([0.0]), margin=1.0))
        0.0
    """
    positive, negative = positive.float().reshape(-1), negative.float().reshape(-1)
    target = torch.ones_like(positive)
    return nn.functional.margin_ranking_loss(positive, negative, target, margin=margin)


def build_loss(name: Loss, model: CrossEncoder, *, margin: float = 1.0) -> nn.Module:
    """The loss module for ``name`` (one of :data:`LOSSES`) around ``model``.

    ``marginmse`` compares raw-logit margins with the teacher's margins, so teacher scores should
    be on a logit-like scale (see :mod:`rerankkit.train._teacher`).

    """
    if name == "margin":
        return MarginRankingLoss(model, margin=margin)
    others = {
        "bce": st_losses.BinaryCrossEntropyLoss,
        "marginmse": st_losses.MarginMSELoss,
        "listwise": st_losses.LambdaLoss,
    }
    return others[name](model)  # type: ignore[no-any-return]
