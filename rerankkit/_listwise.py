"""Pure listwise-reranking logic: window plan, prompt passages, answer parsing, scores.

No I/O here, so every rule is tested exhaustively without an LLM.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# A reasoning block, and an unterminated one (the model ran out of tokens while thinking).
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>.*", re.DOTALL | re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_BARE = re.compile(r"(?<![\d.])(\d+)(?![\d.]*\d)")
_PASSAGE_ID_LIKE = re.compile(r"\[(\s*\d+\s*)\]")
_WHITESPACE = re.compile(r"\s+")


def plan_windows(n: int, window_size: int = 20, step: int = 10) -> list[tuple[int, int]]:
    """Sliding windows ``(start, end)`` from the bottom of the list to the top.

    Each window is reranked in turn, so the best documents bubble up by ``window_size - step``
    places per window. The last window always starts at 0 (the head is never skipped), even
    when the sizes do not divide evenly; a list of 0 or 1 documents needs no window.

    Example:
        >>> plan_windows(35)
        [(15, 35), (5, 25), (0, 15)]
        >>> plan_windows(7)
        [(0, 7)]
    """
    check_window(window_size, step)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n <= 1:
        return []
    windows = []
    end = n
    while True:
        start = max(end - window_size, 0)
        windows.append((start, end))
        if start == 0:
            return windows
        end -= step


def count_windows(n: int, window_size: int = 20, step: int = 10) -> int:
    """Number of LLM calls one sliding pass makes over ``n`` documents (closed form).

    Example:
        >>> count_windows(100), count_windows(35), count_windows(7), count_windows(1)
        (9, 3, 1, 0)
    """
    check_window(window_size, step)
    if n <= 1:
        return 0
    if n <= window_size:
        return 1
    return 1 + math.ceil((n - window_size) / step)


def check_window(window_size: int, step: int) -> None:
    """Validate the window arithmetic's parameters.

    ``step > window_size`` would leave documents that no window ever shows the model.
    """
    for name, value in (("window_size", window_size), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if window_size < 2:
        raise ValueError(f"window_size must be >= 2, got {window_size}")
    if not 1 <= step <= window_size:
        raise ValueError(f"step must be between 1 and window_size={window_size}, got {step}")


def passage_line(identifier: int, text: str, max_chars: int | None = None) -> str:
    """One passage as the model sees it: ``[id] text`` on a single line.

    Whitespace (newlines included) is collapsed so every line starts with its identifier, and
    bracketed numbers inside the passage become ``(n)``: the only ``[n]`` the model sees are
    real identifiers, so a passage cannot impersonate another one.

    Example:
        >>> passage_line(2, "See [1] and\\n[ 3 ].")
        '[2] See (1) and (3).'
    """
    clean = _WHITESPACE.sub(" ", text).strip()
    clean = _PASSAGE_ID_LIKE.sub(lambda m: f"({m.group(1).strip()})", clean)
    if max_chars is not None and len(clean) > max_chars:
        clean = clean[:max_chars].rstrip() + " ..."
    return f"[{identifier}] {clean}"


def format_passages(texts: Sequence[str], max_chars: int | None = None) -> str:
    """The ``{passages}`` block: identifiers 1..n, one per line."""
    return "\n".join(passage_line(i, text, max_chars) for i, text in enumerate(texts, start=1))


def strip_reasoning(text: str) -> str:
    """Remove ``<think>...</think>`` reasoning, closed or not.

    A lone ``</think>`` (templates that pre-open the block) drops everything before it.

    Example:
        >>> strip_reasoning("<think>maybe [1]?</think>[2] > [1]")
        ' [2] > [1]'
    """
    text = _THINK_BLOCK.sub(" ", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    return _THINK_OPEN.sub(" ", text)


@dataclass(frozen=True, slots=True)
class ParsedPermutation:
    """A window's new order and how much of it came from the model.

    Attributes:
        order: A permutation of ``range(n)`` (0-based positions in the window), best first.
        parsed: How many identifiers the answer contributed (0 means unparseable).
        dropped: Identifiers ignored as out of range or repeated.
    """

    order: tuple[int, ...]
    parsed: int
    dropped: int


def parse_permutation(answer: str, n: int) -> ParsedPermutation:
    """Turn a model's ranking answer into a full permutation of ``range(n)``.

    Accepts ``"[3] > [1] > [2]"`` and ``"3, 1, 2"`` forms, fullwidth and other Unicode digits,
    and reasoning blocks. Out-of-range and repeated identifiers are dropped; identifiers the
    answer leaves out keep their previous relative order after the ranked ones. Only the
    answer is parsed: passage texts never reach this function.

    Example:
        >>> parse_permutation("<think>hmm</think>[\uff13] > [1] > [3] > [9]", 4).order
        (2, 0, 1, 3)
        >>> parse_permutation("no idea", 3)
        ParsedPermutation(order=(0, 1, 2), parsed=0, dropped=0)
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    text = unicodedata.normalize("NFKC", strip_reasoning(answer))
    matches = _BRACKETED.findall(text)
    if not matches:
        matches = _BARE.findall(text)
    seen: set[int] = set()
    ranked: list[int] = []
    dropped = 0
    for token in matches:
        position = int(token) - 1  # int() also reads any remaining Unicode decimal digits
        if 0 <= position < n and position not in seen:
            seen.add(position)
            ranked.append(position)
        else:
            dropped += 1
    order = tuple(ranked + [i for i in range(n) if i not in seen])
    return ParsedPermutation(order=order, parsed=len(ranked), dropped=dropped)


def apply_window(ranking: list[int], start: int, end: int, order: Sequence[int]) -> list[int]:
    """Reorder ``ranking[start:end]`` by ``order`` (a permutation of the window's positions).

    Example:
        >>> apply_window([10, 11, 12, 13], 1, 3, [1, 0])
        [10, 12, 11, 13]
    """
    window = ranking[start:end]
    if sorted(order) != list(range(len(window))):
        raise ValueError(f"order must be a permutation of range({len(window)}), got {list(order)}")
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
