"""Sliding-window arithmetic for listwise reranking: pure functions, tested without an LLM."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rerankkit._validation import check_int


def plan_windows(n: int, window_size: int = 20, stride: int = 10) -> list[tuple[int, int]]:
    """Sliding windows ``(start, end)`` from the bottom of the list to the top.

    Each window is reranked in turn, so the best documents bubble up by ``window_size - stride``
    places per window. The last window always starts at 0 (the head is never skipped), even
    when the sizes do not divide evenly; a list of 0 or 1 documents needs no window. The sizes
    are trusted (see :func:`check_window`, which ``LLMListwiseReranker`` calls).

    Example:
        >>> plan_windows(35)
        [(15, 35), (5, 25), (0, 15)]
        >>> plan_windows(7)
        [(0, 7)]
    """
    if n <= 1:
        return []
    windows = []
    end = n
    while True:
        start = max(end - window_size, 0)
        windows.append((start, end))
        if start == 0:
            return windows
        end -= stride


def count_windows(n: int, window_size: int = 20, stride: int = 10) -> int:
    """Number of LLM calls one sliding pass makes over ``n`` documents (closed form).

    Example:
        >>> count_windows(100), count_windows(35), count_windows(7), count_windows(1)
        (9, 3, 1, 0)
    """
    if n <= 1:
        return 0
    if n <= window_size:
        return 1
    return 1 + math.ceil((n - window_size) / stride)


def check_window(window_size: int, stride: int) -> tuple[int, int]:
    """Validate the window arithmetic's parameters; returns them as plain ints.

    The one rule for every place windows are configured (``LLMListwiseReranker``, hence the
    adapters' ``from_llm``, ``llm_reranker`` and ``llm-listwise`` spec strings):
    ``window_size >= 2`` (one passage cannot be ordered) and ``1 <= stride < window_size``.
    Consecutive windows overlap by ``window_size - stride`` passages, and that overlap is the
    only way a document moves from one window into the next: ``stride == window_size`` sorts
    disjoint blocks (a relevant document at the bottom can never reach the top) and
    ``stride > window_size`` also skips documents no window ever shows the model.

    Raises:
        TypeError: ``window_size`` or ``stride`` is not an int.
        ValueError: The rule above is broken, naming the argument.

    Example:
        >>> check_window(20, 10)
        (20, 10)
        >>> check_window(7, 7)
        Traceback (most recent call last):
        ValueError: stride must be < window_size (7) so that consecutive windows overlap and documents can move between them, got 7
    """  # noqa: E501
    window_size = check_int(window_size, "window_size", minimum=2)
    stride = check_int(stride, "stride", minimum=1)
    if stride >= window_size:
        raise ValueError(
            f"stride must be < window_size ({window_size}) so that consecutive windows overlap "
            f"and documents can move between them, got {stride}"
        )
    return window_size, stride


def apply_window(ranking: list[int], start: int, end: int, order: Sequence[int]) -> list[int]:
    """Reorder ``ranking[start:end]`` by ``order`` (a permutation of the window's positions,
    as :func:`rerankkit.llm._parsing.parse_permutation` always returns).

    Example:
        >>> apply_window([10, 11, 12, 13], 1, 3, [1, 0])
        [10, 12, 11, 13]
    """
    window = ranking[start:end]
    return ranking[:start] + [window[i] for i in order] + ranking[end:]


def rank_scores(ranking: Sequence[int]) -> list[float]:
    """Scores in input order from a final ranking (document indices, best first).

    The document at rank ``r`` (0-based) scores ``1 / (r + 1)``: strictly decreasing with rank,
    1.0 for the best, and independent of the list length, so ``score_threshold=1/k`` keeps
    the top ``k``.

    Example:
        >>> rank_scores([2, 0, 1])
        [0.5, 0.3333333333333333, 1.0]
    """
    scores = [0.0] * len(ranking)
    for rank, index in enumerate(ranking):
        scores[index] = 1.0 / (rank + 1)
    return scores
