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

YES_WORDS: frozenset[str] = frozenset({"yes", "true", "relevant"})
NO_WORDS: frozenset[str] = frozenset({"no", "false", "irrelevant"})

_WORD = re.compile(r"[^\W_]+")
# SentencePiece and byte-level BPE mark a leading space with these; providers sometimes leak them.
_SPACE_MARKS = "\u2581\u0120"
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_LABELLED = re.compile(
    rf"(?:rating|score|relevance|grade)\s*(?:is|of|=|:)?\s*\**\s*({_NUMBER})", re.IGNORECASE
)
# Starts at a number's first digit: "17/10" is no 7/10, and a long digit run is read once.
_FRACTION = re.compile(rf"(?<![\d.])({_NUMBER})\s*(?:/|out\s+of)\s*({_NUMBER})", re.IGNORECASE)
# A standalone number that counts something is no rating: "None of the 3 passages answer the
# question." is a refusal, not a 3 (issue 11: counts are not values).
_ANY_NUMBER = re.compile(
    rf"(?<![\w.])({_NUMBER})(?![\w]|\.\d)(?!\s*(?:passages?|documents?|docs?|texts?|results?"
    r"|sources?|sentences?|paragraphs?|items?|studies|study|years?|times|%))",
    re.IGNORECASE,
)
# A restated scale ("from 0 to 10", "(0-10)", "between 1 and 5") is no rating either: "On a
# scale from 0 to 10, I'd give it 8" is an 8. Only a range equal to the scale is dropped.
_RANGE = re.compile(
    r"(?:\b(?:from|between)\s+)?(?<![\w.])(\d+(?:\.\d+)?)(?![\d.])\s*(?:\([^()\n]{0,80}\)\s*)?"
    r"(?:-|\u2013|\u2014|to\b|and\b)\s*(\d+(?:\.\d+)?)(?![\d.])(?:\s*\([^()\n]{0,80}\))?",
    re.IGNORECASE,
)


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


# --- what a ranking looks like ------------------------------------------------------------
# RankGPT-style parsers read every digit of the answer as a passage id, so a refusal such as
# "None of the 3 passages answer the question." becomes the ranking "3". Here numbers are ids
# only inside a structure that only a ranking has (see parse_permutation).

# One passage identifier: "[3]", "3", "Passage 3", "passage #3", "doc 3", "#3". A bare number
# is never part of a decimal ("2.5") or a word ("3rd", "mp3").
_ID = (
    r"(?:\[\s*(?P<{g}b>\d+)\s*\]"
    r"|(?:(?:passages?|documents?|docs?|ids?)\s*(?:#\s*)?|#)?"
    r"(?<![\w.])(?P<{g}n>\d+)(?!\w|\.\d))"
)
_ONE_ID = re.compile(_ID.format(g="x"), re.IGNORECASE)
# An id must not run on into prose: "2, 3 passages" or "1, 2 and 3 are off-topic" are not
# rankings. What may follow an id in a ranking: a separator, punctuation, a bracket, the end.
_ENDS_ID = r"(?=\s*(?:$|[^\w\s]|\n))"
_RANKED_SEP = r"\s*(?:>>?|->|→|≻)\s*"  # separators that only rankings use
_LIST_SEP = r"\s*[,;]\s*"
# Each gap between two ids matches one way only (a separator symbol with optional spaces, or
# spaces alone), so a long answer that is almost a list fails fast (matched on stripped text).
_WHOLE = re.compile(
    rf"^[\"'`*]*\s*{_ID.format(g='a')}"
    rf"(?:(?:\s*(?:>>?|->|→|≻|[,;])\s*|\s+){_ID.format(g='c')})*"
    r"\s*[.!]?[\"'`*]*$",
    re.IGNORECASE,
)
_RANKED_CHAIN = re.compile(
    rf"{_ID.format(g='a')}(?:{_RANKED_SEP}{_ID.format(g='c')})+", re.IGNORECASE
)
_LIST_CHAIN = re.compile(
    rf"{_ID.format(g='a')}{_ENDS_ID}(?:{_LIST_SEP}{_ID.format(g='c')}{_ENDS_ID})+",
    re.IGNORECASE,
)
# A list item naming a passage: "1. [2]", "2) Passage 4: ...", "- 3", "* doc 1 (best)".
_LIST_ITEM = re.compile(
    r"^[ \t]*(?:\d+[ \t]*[.):]|[-*•])[ \t]*\**[ \t]*(?:"
    r"\[\s*(?P<b>\d+)\s*\]|(?:passages?|documents?|docs?)\s*(?:#\s*)?(?P<p>\d+)|#(?P<h>\d+)"
    rf"|(?<![\w.])(?P<n>\d+)(?!\w|\.\d){_ENDS_ID})",
    re.IGNORECASE | re.MULTILINE,
)
_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
# Refusals and verdicts: "None of ...", "not relevant", "I cannot rank", "Sorry, ...".
_NEGATION = re.compile(
    r"\b(?:none|neither|nor|no|not|cannot|unable|irrelevant|sorry|apologi[sz]e)\b|n't\b",
    re.IGNORECASE,
)


def _ids(fragment: str) -> list[str]:
    return [m.group("xb") or m.group("xn") for m in _ONE_ID.finditer(fragment)]


def _ranking_ids(text: str) -> list[str]:
    """The identifiers of the ranking ``text`` states, best first, or ``[]`` if it states none.

    Tried in order; the first structure found decides:

    1. the whole answer is identifiers and separators (``"2 > 1 > 3"``, ``"3, 1, 2"``,
       ``"[2] [1]"``, ``"Passage 2"``);
    2. the longest chain joined by ranking separators (``>``, ``->``, ``→``), wherever it
       is (``"Here is my ranking: 2 > 1 > 3."``);
    3. list items naming passages (``"1. [2]"``, ``"1. Passage 2: ..."``, ``"- 3"``);
       a single item only when it does not negate (``"1. Passage 3 does not answer"``);
    4. a comma/semicolon chain of identifiers that does not run on into prose
       (``"The order is 2, 1, 3."``, but not ``"2, 3 passages"``);
    5. bracketed identifiers in prose without a negation (``"[2] is best, then [1]"``).

    Counts, years, ratings, decimals, list markers and prose mentions ("Passage 3 does not
    answer") are not identifiers.
    """
    whole = _WHOLE.match(text.strip())
    if whole:
        return _ids(text)
    chains = [m.group(0) for m in _RANKED_CHAIN.finditer(text)]
    if chains:
        return _ids(max(chains, key=lambda chain: len(_ids(chain))))
    items = [next(g for g in m.groups() if g) for m in _LIST_ITEM.finditer(text)]
    if len(items) > 1 or (items and not _NEGATION.search(text)):
        return items
    lists = [m.group(0) for m in _LIST_CHAIN.finditer(text)]
    if lists:
        return _ids(max(lists, key=lambda chain: len(_ids(chain))))
    if not _NEGATION.search(text):
        return _BRACKETED.findall(text)
    return []


def parse_permutation(answer: str, n: int) -> ParsedPermutation:
    """Turn a model's ranking answer into a full permutation of ``range(n)``.

    Reads ``"[3] > [1] > [2]"``, ``"3 > 1 > 2"``, ``"3, 1, 2"``, numbered or bulleted lists
    naming passages (``"1. [3]"``, ``"1. Passage 3"``), and any of these after a preamble;
    fullwidth and other Unicode digits, and reasoning blocks. Refusals and prose ("None of the
    3 passages answer the question.") are unparseable (``parsed == 0``, input order kept):
    a number is an identifier only inside a structure only a ranking has (see
    ``_ranking_ids``). Out-of-range and repeated identifiers are dropped; identifiers the
    answer leaves out keep their previous relative order after the ranked ones. Only the
    answer is parsed: passage texts never reach this function.

    Example:
        >>> parse_permutation("<think>hmm</think>[\uff13] > [1] > [3] > [9]", 4).order
        (2, 0, 1, 3)
        >>> parse_permutation("Ranking:\\n1. Passage 2\\n2. Passage 3", 3).order
        (1, 2, 0)
        >>> parse_permutation("None of the 3 passages answer the question.", 3)
        ParsedPermutation(order=(0, 1, 2), parsed=0, dropped=0)
    """
    text = unicodedata.normalize("NFKC", strip_reasoning(answer))
    seen: set[int] = set()
    ranked: list[int] = []
    dropped = 0
    for token in _ranking_ids(text):
        # int() also reads any remaining Unicode decimal digits; a 5,000-digit run is no id
        position = int(token) - 1 if len(token) <= 9 else -1
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
    denominator is ``high`` ("7/10", "7 out of 10"), then the first standalone number that
    does not count something ("3 passages", "2 times", "5%" are not ratings), and accepts the
    first candidate inside the scale. A restatement of the scale itself ("from 0 to 10",
    "(0-10)", "between 0 and 10") is skipped, and so are the numbers of other fractions
    ("12/10" rates nothing; "3/4 of it is relevant, I'd give it 6" is a 6). Reasoning blocks
    are ignored and Unicode digits normalised.

    Example:
        >>> parse_rating("Rating: 8"), parse_rating("I'd say \uff18/10."), parse_rating("3.5")
        (8.0, 8.0, 3.5)
        >>> parse_rating("<think>maybe 9</think> 42 is not a grade") is None
        True
        >>> parse_rating("None of the 3 passages answer the question.") is None
        True
        >>> parse_rating("On a scale from 0 to 10, I'd give it 8.")
        8.0
    """
    text = unicodedata.normalize("NFKC", strip_reasoning(answer))
    text = _RANGE.sub(
        lambda m: " " if (float(m.group(1)), float(m.group(2))) == (low, high) else m.group(0),
        text,
    )

    def in_scale(value: str) -> float | None:
        number = float(value)
        return number if low <= number <= high else None

    for match in _LABELLED.finditer(text):
        if (value := in_scale(match.group(1))) is not None:
            return value
    for match in _FRACTION.finditer(text):
        if float(match.group(2)) == high and (value := in_scale(match.group(1))) is not None:
            return value
    # a fraction's numbers are no standalone rating: "12/10" is out of scale, not a 10
    for match in _ANY_NUMBER.finditer(_FRACTION.sub(" ", text)):
        if (value := in_scale(match.group(1))) is not None:
            return value
    return None
