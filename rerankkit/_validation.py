"""Argument checks shared by every backend; each error names the argument and position."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

from rerankkit._blank import is_blank
from rerankkit.errors import InvalidTextError

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str, argument: str) -> str:
    """``text`` if it is valid Unicode, else :class:`InvalidTextError` naming ``argument`` and
    the offset of its first lone surrogate (the one rule for every entry point, shared
    decision of issues 24/25: refuse, never replace silently).

    Example:
        >>> check_text("caf\u00e9", "query")
        'café'
        >>> check_text("ok \\ud835 Paris", "documents[4]")
        Traceback (most recent call last):
        rerankkit.errors.InvalidTextError: documents[4] is not valid Unicode: lone surrogate \
U+D835 at character 3
    """
    if not text.isascii() and (found := _SURROGATE.search(text)) is not None:
        raise InvalidTextError(argument, found.start(), found.group())
    return text


def check_query(query: Any, argument: str = "query") -> str:
    """Return ``query`` if it is a non-empty string of valid Unicode, else raise naming
    ``argument`` (:class:`InvalidTextError` for a lone surrogate)."""
    if not isinstance(query, str):
        raise TypeError(f"{argument} must be a str, got {type(query).__name__}")
    if is_blank(query):
        raise ValueError(f"{argument} must be a non-empty string")
    return check_text(query, argument)


def check_instance(value: Any, expected: type[object], argument: str) -> Any:
    """``value`` if it is an instance of ``expected``, else a TypeError naming ``argument``.

    Example:
        >>> check_instance("model-name", dict, "settings")
        Traceback (most recent call last):
        TypeError: settings must be a dict, got str
    """
    if not isinstance(value, expected):
        raise TypeError(f"{argument} must be a {expected.__name__}, got {type(value).__name__}")
    return value


def check_sequence(items: Any, expected: type[object], argument: str) -> list[Any]:
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
    return [check_instance(item, expected, f"{argument}[{i}]") for i, item in enumerate(items)]


def check_documents(documents: Any, argument: str = "documents") -> list[str]:
    """Return ``documents`` as a new list of strings of valid Unicode, else raise naming
    ``argument`` and the bad position (:class:`InvalidTextError` for a lone surrogate)."""
    texts = check_sequence(documents, str, argument)
    for position, text in enumerate(texts):
        check_text(text, f"{argument}[{position}]")
    return texts


def _check_kind(
    value: Any,
    argument: str,
    kind: type,
    noun: str,
    optional: bool,
    wrong_type: type[Exception] = TypeError,
) -> Any:
    """``value`` if it is a ``kind`` (never a ``bool``), else ``wrong_type`` naming ``argument``
    (a pydantic field passes ``ValueError``, so a wrong type is a ``ValidationError`` as a
    wrong value is)."""
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = f"{noun} or None" if optional else noun
        raise wrong_type(f"{argument} must be {expected}, got {type(value).__name__}")
    return value


def check_int(
    value: Any,
    argument: str,
    *,
    minimum: int | None = None,
    optional: bool = False,
    wrong_type: type[Exception] = TypeError,
) -> Any:
    """``value`` as a plain ``int``, ``>= minimum`` when given (``None`` too if ``optional``).

    Any ``numbers.Integral`` is accepted (``numpy.int64`` from a config or a data frame) except
    ``bool``, which is almost always a mistake for a count.

    Raises:
        TypeError: ``value`` is not an integer (``2.5``, ``"3"``, ``True``), naming ``argument``.
        ValueError: ``value`` is out of range, naming ``argument`` and the bound.

    Example:
        >>> check_int(3, "top_n", minimum=1)
        3
        >>> check_int(2.5, "top_n", minimum=1, optional=True)
        Traceback (most recent call last):
        TypeError: top_n must be an int or None, got float
        >>> check_int(0, "top_n", minimum=1)
        Traceback (most recent call last):
        ValueError: top_n must be >= 1, got 0
    """
    if value is None and optional:
        return None
    number = int(_check_kind(value, argument, Integral, "an int", optional, wrong_type))
    if minimum is not None and number < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, got {number}")
    return number


def check_number(
    value: Any, argument: str, *, minimum: float | None = None, optional: bool = False
) -> Any:
    """``value`` as a finite ``float`` (``>= minimum`` when given; ``None`` too if ``optional``).

    Any ``numbers.Real`` is accepted except ``bool``.

    Raises:
        TypeError: ``value`` is not a real number, naming ``argument``.
        ValueError: ``value`` is NaN, infinite or below ``minimum``, naming ``argument``.

    Example:
        >>> check_number(0.5, "score_threshold")
        0.5
        >>> check_number(float("nan"), "score_threshold")
        Traceback (most recent call last):
        ValueError: score_threshold must be a finite number, got nan
    """
    if value is None and optional:
        return None
    number = float(_check_kind(value, argument, Real, "a number", optional))
    if not math.isfinite(number):
        raise ValueError(f"{argument} must be a finite number, got {number}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, got {number}")
    return number


def check_weights(
    weights: Any, count: int, *, argument: str = "weights", of: str = "rankings"
) -> list[float] | None:
    """``None``, or ``weights`` as ``count`` floats, each finite and ``>= 0``, not all zero.

    Args:
        weights: The caller's weights, one per fused ranking (or retriever, ...).
        count: How many there must be.
        argument: The caller's name for them, for messages.
        of: What they weigh, for messages (``"rankings"``, ``"retrievers"``).

    Raises:
        TypeError: ``weights`` is not a sequence of numbers.
        ValueError: The wrong count, a negative or non-finite weight, or all zero.

    Example:
        >>> check_weights([1, 3], 2)
        [1.0, 3.0]
        >>> check_weights([1], 2, argument="retriever_weights", of="retrievers")
        Traceback (most recent call last):
        ValueError: retriever_weights has 1 entries for 2 retrievers
    """
    if weights is None:
        return None
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(f"{argument} must be a sequence of numbers, got {type(weights).__name__}")
    if len(weights) != count:
        raise ValueError(f"{argument} has {len(weights)} entries for {count} {of}")
    checked = [
        check_number(weight, f"{argument}[{position}]", minimum=0)
        for position, weight in enumerate(weights)
    ]
    if checked and not any(checked):
        raise ValueError(f"{argument} must not all be zero")
    return checked


def check_choice(value: Any, argument: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; anything else (of any type) is a ValueError.

    A match must be of the choice's kind: ``True``/``False``/``None`` match only themselves,
    so ``1`` is not ``True`` and ``1.0`` is not ``1``.

    Example:
        >>> check_choice("max", "aggregate", ("max", "mean", "first"))
        'max'
        >>> check_choice("median", "aggregate", ("max", "mean", "first"))
        Traceback (most recent call last):
        ValueError: aggregate must be one of ['max', 'mean', 'first'], got 'median'
        >>> check_choice(1, "batch_queries", (None, True, False))  # 1 == True, but not a bool
        Traceback (most recent call last):
        ValueError: batch_queries must be one of [None, True, False], got 1
    """
    options = list(choices)
    if any(_same_choice(value, option) for option in options):
        return value
    raise ValueError(f"{argument} must be one of {options}, got {value!r}")


def _same_choice(value: Any, option: Any) -> bool:
    # `1 == True` and `1.0 == 1` in Python; a choice must match in kind too, so flags stay bools.
    if option is None or isinstance(option, bool) or isinstance(value, bool):
        return value is option
    if isinstance(option, Integral):  # any integer type, as check_int accepts
        return isinstance(value, Integral) and int(value) == option
    return isinstance(value, type(option)) and bool(value == option)


def check_top_n(
    top_n: Any, argument: str = "top_n", wrong_type: type[Exception] = TypeError
) -> int | None:
    """``None`` (keep all) or an int ``>= 1``; see :func:`check_int`. ``argument`` names a
    cut-off the caller calls otherwise (``rerank_top_n``, ``stages[0] top_n``)."""
    return check_int(  # type: ignore[no-any-return]
        top_n, argument, minimum=1, optional=True, wrong_type=wrong_type
    )


def check_score_threshold(
    score_threshold: Any, wrong_type: type[Exception] = TypeError
) -> float | None:
    """``None`` or a real number; NaN is refused (it would keep nothing, silently).

    Infinite thresholds are allowed (``-inf`` keeps everything).
    """
    if score_threshold is None:
        return None
    value = float(
        _check_kind(score_threshold, "score_threshold", Real, "a number", True, wrong_type)
    )
    if math.isnan(value):
        raise ValueError("score_threshold must not be NaN")
    return value


def check_model_name(value: Any, argument: str = "model_name_or_path") -> str:
    """A hub id or a local folder, as a string; ``~`` expanded.

    Raises:
        TypeError: ``value`` is neither a ``str`` nor an ``os.PathLike`` (``None``), naming
            ``argument``.
        ValueError: ``value`` is empty or whitespace (which would load the current folder).

    Example:
        >>> check_model_name(None)
        Traceback (most recent call last):
        TypeError: model_name_or_path must be a str or os.PathLike (hub id or folder), got NoneType
        >>> check_model_name(" ")
        Traceback (most recent call last):
        ValueError: model_name_or_path must be a hub id or a folder, got ' '
    """
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{argument} must be a str or os.PathLike (hub id or folder), "
            f"got {type(value).__name__}"
        )
    name = os.fspath(value)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{argument} must be a hub id or a folder, got {name!r}")
    return name


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a local path, never a hub id (``org/model``): it starts
    with ``/``, ``.`` or ``~``, holds a backslash or the platform's separator other than
    ``/``, or has more than one ``/``.

    Example:
        >>> [looks_like_path(n) for n in ("BAAI/bge-reranker-v2-m3", "./m", "~/m", "a/b/c")]
        [False, True, True, True]
    """
    return (
        name.startswith(("/", ".", "~"))
        or "\\" in name
        or (os.sep != "/" and os.sep in name)
        or name.count("/") > 1
    )


ON_NO_RELEVANT = ("empty", "best")


def check_min_relevance(min_relevance: Any) -> float | None:
    """``None`` or a probability in [0, 1] (``min_relevance`` compares P(relevant)).

    Example:
        >>> check_min_relevance(1.5)
        Traceback (most recent call last):
        ValueError: min_relevance must lie in [0, 1] (a probability), got 1.5
    """
    if min_relevance is None:
        return None
    value = float(_check_kind(min_relevance, "min_relevance", Real, "a number", True))
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"min_relevance must lie in [0, 1] (a probability), got {value}")
    return value
