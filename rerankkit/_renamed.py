"""Old spellings of renamed arguments and values, refused with a message naming the new one.

One vocabulary across the API, specs and CLI (``top_n`` for every cut-off, ``max_concurrency``,
``"unranked"``, ``stride``, ...): where a name changed, the old one is refused here rather
than silently ignored or accepted as a second spelling.

Example:
    >>> refuse_renamed_arguments({"keep_n": 2}, {"keep_n": "top_n"}, where="CascadeReranker")
    Traceback (most recent call last):
    TypeError: CascadeReranker: keep_n was renamed top_n
    >>> refuse_renamed_value("keep", "on_error", {"keep": "unranked"})
    Traceback (most recent call last):
    ValueError: on_error='keep' was renamed 'unranked'
    >>> @renamed_arguments(depth="top_n")
    ... def cut(run: list[int], *, top_n: int) -> list[int]:
    ...     return run[:top_n]
    >>> cut([3, 2, 1], depth=2)
    Traceback (most recent call last):
    TypeError: cut: depth was renamed top_n
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def refuse_renamed_arguments(
    given: Iterable[str], renamed: Mapping[str, str], *, where: str
) -> None:
    """Raise ``TypeError`` for the first of ``given`` that is an old name in ``renamed``."""
    for name in given:
        if name in renamed:
            raise TypeError(f"{where}: {name} was renamed {renamed[name]}")


def refuse_renamed_value(value: Any, argument: str, renamed: Mapping[str, str]) -> None:
    """Raise ``ValueError`` when ``value`` is an old spelling in ``renamed``."""
    if isinstance(value, str) and value in renamed:
        raise ValueError(f"{argument}={value!r} was renamed {renamed[value]!r}")


def renamed_arguments(**renamed: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function so that the old keyword names in ``renamed`` (old=new) are refused
    with :func:`refuse_renamed_arguments`; the signature, docstring and typing are kept."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            refuse_renamed_arguments(kwargs, renamed, where=function.__qualname__)
            return function(*args, **kwargs)

        return checked

    return decorate
