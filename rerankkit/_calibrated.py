"""``CalibratedReranker``: a reranker whose scores are P(relevant), through a fitted map.

It sits on the spec layer because a calibration names the reranker it was fitted for by its
spec string (:func:`rerankkit.reranker_spec`), and ``build_reranker`` reads the spec option
``?calibration=PATH`` into one of these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from rerankkit._base import Group, Reranker, WrappingReranker
from rerankkit._ordering import Details, rank
from rerankkit._result import HIGHEST_SCORE, LOWEST_SCORE, RerankResult
from rerankkit._specs import parse_spec, reranker_spec
from rerankkit.compose._calibration import Calibration
from rerankkit.errors import CalibrationError, SpecError

RAW_SCORE_KEY = "uncalibrated_score"
"""Details key holding the wrapped reranker's own score of each document."""


def reranker_identity(reranker: Reranker) -> str:
    """What a calibration file records of its reranker: the spec string, else the class name.

    Example:
        >>> from rerankkit.testing import FixedScoreReranker, KeywordReranker
        >>> reranker_identity(KeywordReranker()), reranker_identity(FixedScoreReranker([1.0]))
        ('keyword:', 'FixedScoreReranker')
    """
    try:
        return reranker_spec(reranker)
    except TypeError:
        return type(reranker).__name__


def _same_reranker(recorded: str, actual: str) -> bool:
    """Whether two identities name the same reranker: equal kind and options, and the same
    model folder name (so a calibration still fits after the models moved to another path or
    machine), or the same class name for rerankers without a spec."""
    if recorded == actual:
        return True
    try:
        a, b = parse_spec(recorded), parse_spec(actual)
    except (SpecError, TypeError):
        return False
    names = (PurePath(spec.target.rstrip("/\\")).name for spec in (a, b))
    return a.kind == b.kind and a.options == b.options and next(names) == next(names)


def _clipped(score: float) -> float:
    """A raw score as a finite float (NaN, a failed document, as ``LOWEST_SCORE``)."""
    return min(max(score, LOWEST_SCORE), HIGHEST_SCORE) if score == score else LOWEST_SCORE


class CalibratedReranker(WrappingReranker):
    """Scores that mean P(relevant): ``reranker``'s scores through a fitted monotone map.

    The map is the one ``rerankkit calibrate`` fitted for this reranker on judged data (Platt
    or isotonic, see :class:`rerankkit.eval.fit_calibration`), so ``min_relevance=0.5`` or
    ``score_threshold=0.5`` means "at least even odds of being relevant" whatever the model.

    Ranking never changes: the map is monotone non-decreasing, so a higher raw score never
    gets a lower probability, equal raw scores get equal probabilities, and where the map
    makes two different raw scores equal (a flat isotonic step) the wrapped reranker's order
    is kept. Each result's ``details["uncalibrated_score"]`` holds the raw score.

    Pickles (the wrapped reranker and the map) and, when the calibration came from a file,
    has a spec string: the wrapped reranker's plus ``?calibration=PATH``.

    Args:
        reranker: The reranker the calibration was fitted for.
        calibration: A :class:`rerankkit.eval.Calibration` or the path of its JSON file.

    Raises:
        CalibrationError: The file is missing or malformed, or it was fitted for another
            reranker (both named; the model folder's name, kind and options must match).

    Example:
        >>> from rerankkit.eval import Calibration
        >>> from rerankkit.testing import KeywordReranker
        >>> calibration = Calibration("platt", {"a": 2.0, "b": -2.0}, reranker="keyword:")
        >>> calibrated = CalibratedReranker(KeywordReranker(), calibration)
        >>> [(r.index, round(r.score, 3)) for r in calibrated.rerank("cat", ["a dog", "cat cat"])]
        [(1, 0.881), (0, 0.119)]
        >>> calibrated.rerank("cat", ["a dog", "a cow"], min_relevance=0.5)
        []
    """

    def __init__(self, reranker: Reranker, calibration: Calibration | str | os.PathLike[str]):
        if not isinstance(reranker, Reranker):
            raise TypeError(f"reranker must be a rerankkit.Reranker, got {type(reranker).__name__}")
        if isinstance(calibration, (str, os.PathLike)):
            calibration = Calibration.load(calibration)
        elif not isinstance(calibration, Calibration):
            raise TypeError(
                "calibration must be a Calibration or the path of a calibration file, got "
                f"{type(calibration).__name__}"
            )
        actual = reranker_identity(reranker)
        if not _same_reranker(calibration.reranker, actual):
            where = f" ({calibration.source})" if calibration.source else ""
            raise CalibrationError(
                f"calibration{where} was fitted for {calibration.reranker!r}, not for {actual!r}:"
                " a map fitted on one reranker's scores means nothing for another's; fit one "
                "for this reranker with rerankkit calibrate --reranker SPEC"
            )
        self.reranker = reranker
        self.calibration = calibration

    @property
    def probability_scores(self) -> bool:
        """``True``: calibrated probabilities."""
        return True

    @property
    def calibrated_scores(self) -> bool:
        """``True``: fitted on judged data."""
        return True

    @property
    def cache_key(self) -> str:
        """The wrapped reranker's key and the map: other scores than the wrapped one's."""
        fitted = json.dumps(self.calibration.to_dict()["parameters"], sort_keys=True)
        return f"calibrated:{self.calibration.method}:{fitted}:{self.reranker.cache_key}"

    def _calibrated(self, scored: tuple[Sequence[float], Details]) -> tuple[list[float], Details]:
        raw, details = scored
        extras: list[Mapping[str, Any]] = list(details) if details else [{}] * len(raw)
        merged = [
            {**extra, RAW_SCORE_KEY: _clipped(float(score))}
            for extra, score in zip(extras, raw, strict=True)
        ]
        return self.calibration.apply(raw), merged

    def _score_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        return self._calibrated(self.reranker._score_with_details(query, documents))

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        return self._calibrated(await self.reranker._ascore_with_details(query, documents))

    def _score_many_with_details(
        self, groups: list[Group]
    ) -> list[tuple[Sequence[float], Details]]:
        return [self._calibrated(one) for one in self.reranker._score_many_with_details(groups)]

    def _select(
        self, scores: list[float], details: Details, top_n: int | None, threshold: float | None
    ) -> list[RerankResult]:
        # equal probabilities from different raw scores keep the wrapped reranker's order
        raw = [float(d.get(RAW_SCORE_KEY, LOWEST_SCORE)) for d in details] if details else None
        return rank(scores, top_n=top_n, score_threshold=threshold, details=details, tie_break=raw)

    def __repr__(self) -> str:
        return f"CalibratedReranker({self.reranker!r}, method={self.calibration.method!r})"
