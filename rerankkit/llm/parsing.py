"""Reading LLM answers: reasoning blocks, listwise permutations, yes/no, P(yes), ratings.

Pure functions: no I/O, so every rule is tested exhaustively without an LLM.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

# A reasoning block, and an unterminated one (the model ran out of tokens while thinking).
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>.*", re.DOTALL | re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_BARE = re.compile(r"(?<![\d.])(\d+)(?![\d.]*\d)")

YES_WORDS: frozenset[str] = frozenset({"yes", "true", "relevant"})
NO_WORDS: frozenset[str] = frozenset({"no", "false", "irrelevant"})

_WORD = re.compile(r"[^\W_]+")
# SentencePiece and byte-level BPE mark a leading space with these; providers sometimes leak them.
_SPACE_MARKS = "\u2581\u0120"
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_LABELLED = re.compile(
    rf"(?:rating|score|relevance|grade)\s*(?:is|of|=|:)?\s*\**\s*({_NUMBER})", re.IGNORECASE
)
_FRACTION = re.compile(rf"({_NUMBER})\s*(?:/|out\s+of)\s*({_NUMBER})", re.IGNORECASE)
_ANY_NUMBER = re.compile(rf"(?<![\w.])({_NUMBER})(?![\w]|\.\d)")


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


def _canonical(token: str) -> str:
    return unicodedata.normalize("NFKC", token).strip().strip(_SPACE_MARKS).strip().casefold()


def parse_yes_no(
    answer: str, yes: Collection[str] = YES_WORDS, no: Collection[str] = NO_WORDS
) -> float | None:
    """1.0 for a yes answer, 0.0 for no, ``None`` when the answer is neither.

    The first word after any reasoning block decides, case-insensitively.

    Example:
        >>> parse_yes_no("**Yes**, it is."), parse_yes_no("<think>yes?</think> No.")
        (1.0, 0.0)
        >>> parse_yes_no("Not relevant."), parse_yes_no("Perhaps.")
        (0.0, None)
    """
    words = _WORD.findall(unicodedata.normalize("NFKC", strip_reasoning(answer)).casefold())
    if not words:
        return None
    first = words[0]
    if first == "not" and len(words) > 1:  # "not relevant"
        first, negated = words[1], True
    else:
        negated = False
    if first in yes:
        return 0.0 if negated else 1.0
    if first in no:
        return 1.0 if negated else 0.0
    return None


def p_yes_from_logprobs(
    top_logprobs: Sequence[Mapping[str, float]] | None,
    yes: Collection[str] = ("yes",),
    no: Collection[str] = ("no",),
) -> float | None:
    """P(yes) from next-token log-probabilities, summed over surface variants.

    Uses the first generated position whose candidates include a yes or no variant ("Yes",
    " yes", "YES", "\u2581yes", ...), so a leading space or markup token does not hide the answer.
    P(yes) = sum(P(yes variants)) / (sum(P(yes variants)) + sum(P(no variants))).

    Example:
        >>> round(p_yes_from_logprobs([{"Yes": math.log(0.6), " yes": math.log(0.1),
        ...                              "No": math.log(0.2), "Maybe": math.log(0.1)}]), 4)
        0.7778
        >>> p_yes_from_logprobs([{"Sure": -0.1}]) is None
        True
    """
    if not top_logprobs:
        return None
    yes_set = {_canonical(w) for w in yes}
    no_set = {_canonical(w) for w in no}
    for position in top_logprobs:
        p_yes = p_no = 0.0
        for token, logprob in position.items():
            word = _canonical(token)
            if word in yes_set:
                p_yes += math.exp(logprob)
            elif word in no_set:
                p_no += math.exp(logprob)
        if p_yes + p_no > 0.0:
            return p_yes / (p_yes + p_no)
    return None


def parse_rating(answer: str, low: float = 0, high: float = 10) -> float | None:
    """The rating an answer gives on the scale ``[low, high]``, or ``None``.

    Looks, in order, for a labelled number ("Rating: 7", "score = 3.5"), a fraction whose
    denominator is ``high`` ("7/10", "7 out of 10"), then the first standalone number, and
    accepts the first candidate inside the scale. Reasoning blocks are ignored and Unicode
    digits normalised.

    Example:
        >>> parse_rating("Rating: 8"), parse_rating("I'd say \uff18/10."), parse_rating("3.5")
        (8.0, 8.0, 3.5)
        >>> parse_rating("<think>maybe 9</think> 42 is not a grade") is None
        True
    """
    if not low < high:
        raise ValueError(f"rating scale needs low < high, got ({low}, {high})")
    text = unicodedata.normalize("NFKC", strip_reasoning(answer))

    def in_scale(value: str) -> float | None:
        number = float(value)
        return number if low <= number <= high else None

    for match in _LABELLED.finditer(text):
        if (value := in_scale(match.group(1))) is not None:
            return value
    for match in _FRACTION.finditer(text):
        if float(match.group(2)) == high and (value := in_scale(match.group(1))) is not None:
            return value
    for match in _ANY_NUMBER.finditer(text):
        if (value := in_scale(match.group(1))) is not None:
            return value
    return None
