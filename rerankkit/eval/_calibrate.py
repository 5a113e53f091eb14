"""Fit and measure a calibration: scores -> P(relevant) on judged data (``rerankkit calibrate``).

Labels are binary: a document is relevant when its qrels grade is at least
``relevance_level``; an unjudged candidate counts as not relevant (trec_eval's convention).

Two maps are fitted with scikit-learn (the ``eval`` extra) and the one with the lower
held-out log-loss wins: Platt scaling (``LogisticRegression`` on the score; Platt 1999,
without his target smoothing) and isotonic regression (``IsotonicRegression``; Zadrozny &
Elkan 2002). Held out means k-fold cross-validation split by query (``GroupKFold``, 5 folds or
one per query when fewer), so a query's documents never sit on both sides. The winner is then
refitted on all the data and stored in the plain form of
:class:`rerankkit.compose._calibration.Calibration`, which applies without scikit-learn.

Measures (``labels`` 0/1, ``probabilities`` in [0, 1]):

* ECE, expected calibration error with 10 equal-width bins over [0, 1]:
  ``sum_b (n_b / n) * |mean(labels in b) - mean(probabilities in b)|`` (Naeini, Cooper &
  Hauskrecht 2015; Guo et al. 2017, eq. 3). A score outside [0, 1] (a cosine, a logit) is
  clipped into it, so "ECE before" of such a scale is only a reference point.
* Brier score: ``mean((probability - label)^2)`` (Brier 1950).
* Log-loss: ``-mean(label * log p + (1 - label) * log(1 - p))`` with ``p`` clipped to
  ``[1e-6, 1 - 1e-6]`` (an isotonic step at 0 or 1 would otherwise cost infinity).

Example:
    >>> round(expected_calibration_error([0.1, 0.15, 0.9, 0.95], [0, 0, 1, 1]), 4)
    0.1
    >>> round(brier_score([0.0, 1.0, 0.5], [0, 1, 1]), 4)
    0.0833
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rerankkit._optional import require
from rerankkit.compose._calibration import Calibration, CalibrationMethod

BINS = 10
LOG_LOSS_EPSILON = 1e-6
TARGET_PRECISIONS = (0.5, 0.7, 0.9)
TARGET_RECALLS = (0.5, 0.8, 0.9)


def _arrays(probabilities: Sequence[float], labels: Sequence[int | bool]) -> tuple[Any, Any]:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(labels, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(
            f"probabilities and labels must be non-empty and of one length, got {p.size} "
            f"and {y.size}"
        )
    return p, y


def expected_calibration_error(
    probabilities: Sequence[float], labels: Sequence[int | bool], *, bins: int = BINS
) -> float:
    """ECE with ``bins`` equal-width bins over [0, 1] (see the module docstring); a
    probability of exactly 1 falls in the last bin."""
    return sum(
        row["count"] * abs(row["positive_rate"] - row["mean_probability"])
        for row in reliability_table(probabilities, labels, bins=bins)
    ) / len(probabilities)


def reliability_table(
    probabilities: Sequence[float], labels: Sequence[int | bool], *, bins: int = BINS
) -> list[dict[str, float]]:
    """One row per non-empty equal-width bin: ``lower``, ``upper``, ``count``,
    ``mean_probability``, ``positive_rate`` (the reliability diagram's points).

    Example:
        >>> reliability_table([0.05, 0.95], [0, 1], bins=2)[1]
        {'lower': 0.5, 'upper': 1.0, 'count': 1, 'mean_probability': 0.95, 'positive_rate': 1.0}
    """
    p, y = _arrays(probabilities, labels)
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "lower": b / bins,
                    "upper": (b + 1) / bins,
                    "count": int(mask.sum()),
                    "mean_probability": float(p[mask].mean()),
                    "positive_rate": float(y[mask].mean()),
                }
            )
    return rows


def brier_score(probabilities: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Mean squared difference between probability and label (lower is better)."""
    p, y = _arrays(probabilities, labels)
    return float(np.mean((p - y) ** 2))


def log_loss(probabilities: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Mean negative log-likelihood, probabilities clipped to ``[1e-6, 1 - 1e-6]``.

    Example:
        >>> round(log_loss([0.5, 0.5], [0, 1]), 4)
        0.6931
    """
    p, y = _arrays(probabilities, labels)
    p = np.clip(p, LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def threshold_table(
    probabilities: Sequence[float],
    labels: Sequence[int | bool],
    *,
    precisions: Sequence[float] = TARGET_PRECISIONS,
    recalls: Sequence[float] = TARGET_RECALLS,
) -> list[dict[str, Any]]:
    """The ``min_relevance`` to use for a target precision or recall, on these labels.

    For a target precision: the lowest threshold whose kept documents (``p >= threshold``)
    reach it (the most recall at that precision); for a target recall: the highest threshold
    that still reaches it. Each row: ``target`` (``"precision >= 0.9"``), ``threshold``
    (``None`` when no threshold reaches the target), ``precision``, ``recall``, ``kept``.

    Example:
        >>> rows = threshold_table([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0], precisions=[0.9],
        ...                        recalls=[1.0])
        >>> [(row["target"], row["threshold"]) for row in rows]
        [('precision >= 0.9', 0.9), ('recall >= 1', 0.3)]
    """
    p, y = _arrays(probabilities, labels)
    positives = float(y.sum())
    candidates = []  # (threshold, precision, recall, kept), thresholds descending
    for threshold in np.unique(p)[::-1]:
        kept = p >= threshold
        hits = float(y[kept].sum())
        recall = hits / positives if positives else 0.0
        candidates.append((float(threshold), hits / kept.sum(), recall, int(kept.sum())))
    rows = []
    for target in precisions:
        hits_target = [c for c in candidates if c[1] >= target]
        rows.append(_row(f"precision >= {target:g}", hits_target[-1] if hits_target else None))
    for target in recalls:
        reaching = [c for c in candidates if c[2] >= target]
        rows.append(_row(f"recall >= {target:g}", reaching[0] if reaching else None))
    return rows


def _row(target: str, found: tuple[float, float, float, int] | None) -> dict[str, Any]:
    if found is None:
        return {"target": target, "threshold": None, "precision": None, "recall": None, "kept": 0}
    threshold, precision, recall, kept = found
    return {
        "target": target,
        "threshold": threshold,
        "precision": float(precision),
        "recall": float(recall),
        "kept": kept,
    }


# --------------------------------------------------------------------------- fitting


def _fit_one(method: CalibrationMethod, scores: Any, labels: Any) -> dict[str, Any] | None:
    """The plain parameters of one map fitted on ``scores``/``labels``; ``None`` when the
    method cannot give a monotone increasing map here (a Platt slope <= 0)."""
    if method == "platt":
        linear_model = require("sklearn.linear_model", "eval")
        # C large: plain maximum likelihood, as Platt's; lbfgs on one feature is exact enough
        model = linear_model.LogisticRegression(C=1e6, max_iter=1000)
        model.fit(scores.reshape(-1, 1), labels)
        a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
        return {"a": a, "b": b} if a > 0 and math.isfinite(b) else None
    isotonic = require("sklearn.isotonic", "eval")
    model = isotonic.IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(scores, labels)
    x, y = np.asarray(model.X_thresholds_), np.asarray(model.y_thresholds_)
    keep = np.concatenate([[True], np.diff(x) > 0])  # strictly increasing breakpoints
    return {"x": x[keep].tolist(), "y": np.clip(y[keep], 0.0, 1.0).tolist()}


def _applied(method: CalibrationMethod, parameters: dict[str, Any], scores: Any) -> list[float]:
    return Calibration(method, parameters, reranker="").apply(scores.tolist())


@dataclass(frozen=True)
class _Candidate:
    method: CalibrationMethod
    held_out_log_loss: float | None
    held_out: Any  # out-of-fold probabilities


def _cross_validated(
    method: CalibrationMethod, scores: Any, labels: Any, groups: Any, folds: int
) -> _Candidate:
    model_selection = require("sklearn.model_selection", "eval")
    predicted = np.empty_like(scores)
    for train, test in model_selection.GroupKFold(n_splits=folds).split(scores, labels, groups):
        if labels[train].min() == labels[train].max():  # one class only: no map to learn
            return _Candidate(method, None, None)
        parameters = _fit_one(method, scores[train], labels[train])
        if parameters is None:
            return _Candidate(method, None, None)
        predicted[test] = _applied(method, parameters, scores[test])
    return _Candidate(method, log_loss(predicted.tolist(), labels.tolist()), predicted)


def fit_calibration(
    scores: Sequence[Sequence[float]],
    labels: Sequence[Sequence[int | bool]],
    *,
    reranker: str,
    fitted_on: Mapping[str, Any] | None = None,
    methods: Sequence[CalibrationMethod] = ("platt", "isotonic"),
    folds: int = 5,
) -> Calibration:
    """Fit a score -> P(relevant) map on judged scores, query by query.

    Args:
        scores: One list of reranker scores per query (finite; a failed document's
            ``LOWEST_SCORE`` is left out).
        labels: The matching binary labels (truthy = relevant).
        reranker: The reranker's spec string (``reranker_spec``), recorded in the file.
        fitted_on: What to record about the data (folder, run, relevance level, ...).
        methods: The candidates; the lower held-out log-loss wins.
        folds: Cross-validation folds, split by query (at most one per query).

    Returns:
        The :class:`Calibration`, refitted on all the data, whose ``metrics`` hold: the
        winner and each method's held-out log-loss; ECE, Brier and log-loss of the raw
        scores (clipped to [0, 1]) and of the held-out calibrated probabilities (an honest
        estimate on queries the map did not see); the threshold table and the reliability
        table of the held-out probabilities.

    Raises:
        ValueError: Fewer than 2 queries, labels of one class only, mismatched lengths, or
            no method could fit a monotone increasing map.
        MissingExtraError: scikit-learn is not installed (``rerankkit[eval]``).

    Example:
        >>> import random
        >>> rng = random.Random(0)
        >>> labels = [[rng.random() < 0.3 for _ in range(20)] for _ in range(10)]
        >>> scores = [[2.0 * y + rng.gauss(0, 1) for y in query] for query in labels]
        >>> calibration = fit_calibration(scores, labels, reranker="keyword:")
        >>> calibration.metrics["chosen"], calibration.probability(3.0) > 0.9
        ('platt', True)
    """
    if len(scores) != len(labels):
        raise ValueError(f"labels has {len(labels)} queries for {len(scores)} score lists")
    flat_scores: list[float] = []
    flat_labels: list[int] = []
    groups: list[int] = []
    for position, (row, row_labels) in enumerate(zip(scores, labels, strict=True)):
        if len(row) != len(row_labels):
            raise ValueError(
                f"labels[{position}] has {len(row_labels)} entries for {len(row)} scores"
            )
        for score, label in zip(row, row_labels, strict=True):
            if math.isfinite(score) and score > -1e29:  # LOWEST_SCORE: not a model score
                flat_scores.append(float(score))
                flat_labels.append(int(bool(label)))
                groups.append(position)
    s, y, g = np.asarray(flat_scores), np.asarray(flat_labels), np.asarray(groups)
    queries = len(set(groups))
    if queries < 2:
        raise ValueError(f"calibration needs judged documents of at least 2 queries, got {queries}")
    if y.size == 0 or y.min() == y.max():
        raise ValueError("calibration needs both relevant and non-relevant documents")
    folds = min(folds, queries)
    candidates = [_cross_validated(method, s, y, g, folds) for method in methods]
    usable = [c for c in candidates if c.held_out_log_loss is not None]
    if not usable:
        raise ValueError(
            "no monotone increasing map fits these scores (do higher scores mean less "
            "relevant? is a fold all one class?)"
        )
    best = min(usable, key=lambda c: c.held_out_log_loss)  # type: ignore[arg-type, return-value]
    parameters = _fit_one(best.method, s, y)
    if parameters is None:
        raise ValueError(f"{best.method} did not fit a monotone increasing map on all the data")
    held_out = best.held_out.tolist()
    metrics = {
        "chosen": best.method,
        "held_out_log_loss": {c.method: c.held_out_log_loss for c in candidates},
        "pairs": int(y.size),
        "positives": int(y.sum()),
        "queries": queries,
        "folds": folds,
        "before": measures(s.tolist(), y.tolist()),
        "after_held_out": measures(held_out, y.tolist()),
        "thresholds_held_out": threshold_table(held_out, y.tolist()),
        "reliability": {
            "before": reliability_table(s.tolist(), y.tolist()),
            "after_held_out": reliability_table(held_out, y.tolist()),
        },
    }
    return Calibration(
        best.method, parameters, reranker=reranker, fitted_on=dict(fitted_on or {}), metrics=metrics
    )


def measures(probabilities: Sequence[float], labels: Sequence[int | bool]) -> dict[str, float]:
    """``{"ece", "brier", "log_loss"}`` of probabilities (clipped to [0, 1]) against labels.

    Example:
        >>> {name: round(value, 4) for name, value in measures([0.2, 0.8], [0, 1]).items()}
        {'ece': 0.2, 'brier': 0.04, 'log_loss': 0.2231}
    """
    return {
        "ece": expected_calibration_error(probabilities, labels),
        "brier": brier_score(probabilities, labels),
        "log_loss": log_loss(probabilities, labels),
    }


def judged_labels(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    relevance_level: int,
) -> tuple[list[str], list[list[float]], list[list[int]]]:
    """``(query ids, scores, labels)`` of a scored run's judged queries, in run order; a
    document is relevant when its grade >= ``relevance_level`` (unjudged: not relevant).

    Example:
        >>> judged_labels({"q": {"a": 2, "b": 1}}, {"q": {"a": 0.9, "b": 0.4, "c": 0.1}}, 2)
        (['q'], [[0.9, 0.4, 0.1]], [[1, 0, 0]])
    """
    ids, scores, labels = [], [], []
    for qid, ranked in run.items():
        judged = qrels.get(qid)
        if not judged:
            continue
        ids.append(qid)
        scores.append([float(score) for score in ranked.values()])
        labels.append([int(judged.get(doc, 0) >= relevance_level) for doc in ranked])
    return ids, scores, labels


def plot_reliability(
    curves: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path, *, title: str = ""
) -> Path:
    """Write a reliability diagram (PNG): each curve's positive rate against its mean
    probability per bin, with the diagonal of perfect calibration.

    Args:
        curves: ``{label: reliability_table(...)}``.
        path: Where to write the PNG.
    """
    require("matplotlib", "eval")
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for label, rows in curves.items():
        axes.plot(
            [row["mean_probability"] for row in rows],
            [row["positive_rate"] for row in rows],
            marker="o",
            label=label,
        )
    axes.set(
        xlabel="predicted P(relevant), bin mean",
        ylabel="share relevant",
        xlim=(0, 1),
        ylim=(0, 1),
        title=title,
    )
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
