"""Read a service's answer back into scores in request order (pure, no I/O).

A service answers with ``(index, score)`` items in its own order (best first, usually). We
refuse to guess: an answer that omits, repeats or invents an index, or whose score is not a
finite number, raises ``AnswerShapeError`` (the client turns it into ``RemoteServiceError``
with an excerpt of the answer), so no document is ever lost or counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class AnswerShapeError(ValueError):
    """A service's answer does not cover the request's documents exactly once."""


def scores_by_index(
    answer: Any, count: int, *, results_key: str | None, score_key: str
) -> list[float]:
    """Scores in request order from an answer's ``[{index, score}, ...]`` list.

    Args:
        answer: The decoded JSON answer.
        count: Documents in the request; every index ``0..count-1`` must appear once.
        results_key: Key of the list in the answer object; ``None`` when the answer is the
            list itself (TEI).
        score_key: Key of the score in each item (``relevance_score``, ``score``); the
            position is under ``index``.

    Raises:
        AnswerShapeError: Not a list of objects, an index missing, repeated, out of range or
            not an integer, or a score that is not a finite number.

    Example:
        >>> answer = {"results": [{"index": 1, "relevance_score": 0.9},
        ...                       {"index": 0, "relevance_score": 0.2}]}
        >>> scores_by_index(answer, 2, results_key="results", score_key="relevance_score")
        [0.2, 0.9]
        >>> scores_by_index([{"index": 0, "score": 1.0}], 2, results_key=None, score_key="score")
        Traceback (most recent call last):
        ...
        rerankkit.remote._merge.AnswerShapeError: index 1 missing from the answer (2 documents sent)
    """
    items = answer
    if results_key is not None:
        if not isinstance(answer, Mapping):
            raise AnswerShapeError(f"expected a JSON object with {results_key!r}")
        items = answer.get(results_key)
    if not isinstance(items, list):
        where = repr(results_key) if results_key else "the answer"
        raise AnswerShapeError(f"{where} must be a JSON list, got {type(items).__name__}")
    scores: list[float | None] = [None] * count
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise AnswerShapeError(f"item {position} is not a JSON object")
        index, score = item.get("index"), item.get(score_key)
        if not isinstance(index, int) or isinstance(index, bool):
            raise AnswerShapeError(f"item {position}: 'index' is not an integer: {index!r}")
        if not 0 <= index < count:
            raise AnswerShapeError(
                f"item {position}: invented index {index} ({count} documents sent)"
            )
        if scores[index] is not None:
            raise AnswerShapeError(f"item {position}: index {index} repeated")
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            raise AnswerShapeError(
                f"item {position}: {score_key!r} is not a finite number: {score!r}"
            )
        scores[index] = float(score)
    missing = [i for i, score in enumerate(scores) if score is None]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        noun = "index" if len(missing) == 1 else "indices"
        raise AnswerShapeError(f"{noun} {shown} missing from the answer ({count} documents sent)")
    return [float(score) for score in scores if score is not None]
