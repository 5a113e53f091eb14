"""A calibration: a monotone map from a reranker's scores to P(relevant), and its JSON file.

``rerankkit calibrate`` (``rerankkit.eval.fit_calibration``) fits one on judged data; this
module only applies and stores it, in a plain form that needs no fitting library:

* ``"platt"`` (Platt 1999, logistic regression on the score): ``P = 1 / (1 + exp(-(a * s +
  b)))`` with ``a > 0``, so higher scores never get a lower probability.
* ``"isotonic"`` (isotonic regression, Zadrozny & Elkan 2002): breakpoints ``x`` (increasing
  scores) and ``y`` (non-decreasing probabilities), linear interpolation between them and the
  end values beyond them (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``).

A NaN score (a failed document) maps to NaN, so the core still flags it ``rerank_failed``.

Example:
    >>> platt = Calibration("platt", {"a": 2.0, "b": -1.0}, reranker="keyword:")
    >>> [round(p, 4) for p in platt.apply([0.0, 0.5, 1.0])]
    [0.2689, 0.5, 0.7311]
    >>> iso = Calibration("isotonic", {"x": [0.0, 1.0], "y": [0.1, 0.9]}, reranker="keyword:")
    >>> iso.apply([-5.0, 0.25, 7.0])
    [0.1, 0.30000000000000004, 0.9]
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rerankkit.errors import CalibrationError

CalibrationMethod = Literal["platt", "isotonic"]
FORMAT = "rerankkit-calibration/1"
"""The ``format`` field of a calibration file; a file of another format is refused."""


def _sigmoid(value: float) -> float:
    # the two branches keep exp() from overflowing for large |value|
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    small = math.exp(value)
    return small / (1.0 + small)


def _numbers(values: Any, name: str) -> list[float]:
    if not isinstance(values, list) or not values:
        raise CalibrationError(f"calibration {name} must be a non-empty list of numbers")
    numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise CalibrationError(f"calibration {name} must hold finite numbers")
    return numbers


@dataclass(frozen=True)
class Calibration:
    """A fitted score -> P(relevant) map and what it was fitted on.

    Attributes:
        method: ``"platt"`` or ``"isotonic"`` (see the module docstring).
        parameters: ``{"a", "b"}`` for Platt; ``{"x": [...], "y": [...]}`` for isotonic.
        reranker: The spec string of the reranker it belongs to (``reranker_spec`` of it),
            or its class name when it has no spec form.
        fitted_on: Where it was fitted: data folder, run, split, relevance level, counts.
        metrics: ECE and Brier before/after, the held-out log-loss of each method, the
            threshold table (see ``rerankkit.eval.fit_calibration``).
        source: The file it was loaded from (not stored in the file); lets a
            ``CalibratedReranker`` write its spec string (``?calibration=PATH``).

    Raises:
        CalibrationError: Unknown method, missing or non-finite parameters, a Platt slope
            ``a <= 0`` or isotonic breakpoints that are not increasing (not monotone).
    """

    method: CalibrationMethod
    parameters: Mapping[str, Any]
    reranker: str
    fitted_on: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.method == "platt":
            a, b = (float(self.parameters.get(k, math.nan)) for k in ("a", "b"))
            if not (math.isfinite(a) and math.isfinite(b)):
                raise CalibrationError("platt calibration needs finite parameters a and b")
            if a <= 0:
                raise CalibrationError(
                    f"platt calibration slope a={a} must be > 0 (a monotone increasing map)"
                )
        elif self.method == "isotonic":
            x = _numbers(self.parameters.get("x"), "x")
            y = _numbers(self.parameters.get("y"), "y")
            if len(x) != len(y):
                raise CalibrationError(f"isotonic calibration has {len(x)} x for {len(y)} y")
            if any(b <= a for a, b in itertools.pairwise(x)):
                raise CalibrationError("isotonic calibration x must be strictly increasing")
            if any(b < a for a, b in itertools.pairwise(y)) or not 0 <= y[0] <= y[-1] <= 1:
                raise CalibrationError("isotonic calibration y must be non-decreasing in [0, 1]")
        else:
            raise CalibrationError(
                f"calibration method must be 'platt' or 'isotonic', got {self.method!r}"
            )

    def probability(self, score: float) -> float:
        """P(relevant) of one score, in [0, 1]; NaN for NaN.

        Example:
            >>> Calibration("platt", {"a": 1.0, "b": 0.0}, reranker="keyword:").probability(0.0)
            0.5
        """
        if math.isnan(score):
            return math.nan
        if self.method == "platt":
            return _sigmoid(self.parameters["a"] * score + self.parameters["b"])
        x, y = self.parameters["x"], self.parameters["y"]
        if score <= x[0]:
            return float(y[0])
        if score >= x[-1]:
            return float(y[-1])
        right = bisect.bisect_right(x, score)
        x0, x1, y0, y1 = x[right - 1], x[right], y[right - 1], y[right]
        return float(y0 + (y1 - y0) * (score - x0) / (x1 - x0))

    def apply(self, scores: Iterable[float]) -> list[float]:
        """:meth:`probability` of each score, in order."""
        return [self.probability(float(score)) for score in scores]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``source`` left out), with ``format`` first."""
        data = asdict(self)
        data.pop("source")
        data["parameters"] = dict(self.parameters)
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Calibration:
        """Read :meth:`to_dict`'s form back.

        Raises:
            CalibrationError: Another format, a missing field, a bad map.
        """
        if data.get("format") != FORMAT:
            raise CalibrationError(
                f"{source or 'calibration'}: format {data.get('format')!r} is not {FORMAT!r} "
                "(write one with rerankkit calibrate)"
            )
        try:
            return cls(
                method=data["method"],
                parameters=dict(data["parameters"]),
                reranker=str(data["reranker"]),
                fitted_on=dict(data.get("fitted_on", {})),
                metrics=dict(data.get("metrics", {})),
                source=source,
            )
        except (KeyError, TypeError) as error:
            raise CalibrationError(f"{source or 'calibration'}: missing or bad {error}") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON file (strict JSON: no NaN) and return its path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a calibration file written by :meth:`save` / ``rerankkit calibrate``.

        Raises:
            CalibrationError: Not found, not JSON, or not a valid calibration (path named).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CalibrationError(f"cannot read calibration file {path}: {error}") from None
        if not isinstance(data, dict):
            raise CalibrationError(f"calibration file {path} must hold a JSON object")
        return cls.from_dict(data, source=os.fspath(path))
