"""Argument checks shared by every backend; each error names the argument and position."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any, TypeVar

T = TypeVar("T")


def check_query(query: Any) -> str:
    """Return ``query`` if it is a non-empty string, else raise naming ``query``."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must be a non-empty string")
    return query


def check_sequence(items: Any, expected: type[T], argument: str) -> list[T]:
    """A new list of ``items``, each an instance of ``expected``; errors name ``argument`` and
    the bad position.

    Example:
        >>> check_sequence(["a", 3], str, "documents")
        Traceback (most recent call last):
        TypeError: documents[1] must be a str, got int
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(
            f"{argument} must be a sequence (list, tuple) of {expected.__name__}, "
            f"got {type(items).__name__}"
        )
    for position, item in enumerate(items):
        if not isinstance(item, expected):
            raise TypeError(
                f"{argument}[{position}] must be a {expected.__name__}, got {type(item).__name__}"
            )
    return list(items)


def check_documents(documents: Any) -> list[str]:
    """Return ``documents`` as a new list of strings, else raise naming the bad position."""
    return check_sequence(documents, str, "documents")


def check_top_n(top_n: Any) -> int | None:
    """``None`` or a positive int; ``top_n <= 0`` is a ValueError."""
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise TypeError(f"top_n must be an int or None, got {type(top_n).__name__}")
    if top_n <= 0:
        raise ValueError(f"top_n must be >= 1 (or None for all), got {top_n}")
    return top_n


def check_score_threshold(score_threshold: Any) -> float | None:
    """``None`` or a finite real number."""
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, Real):
        raise TypeError(
            f"score_threshold must be a number or None, got {type(score_threshold).__name__}"
        )
    value = float(score_threshold)
    if math.isnan(value):
        raise ValueError("score_threshold must not be NaN")
    return value
