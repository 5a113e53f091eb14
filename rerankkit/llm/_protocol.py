"""The framework-free LLM protocol the LLM rerankers talk to.

An LLM is anything with ``complete(prompt) -> Completion | str``. It may also have
``async acomplete(prompt)``; the rerankers use it when present and otherwise run ``complete``
in a bounded thread pool. When the provider returns next-token log-probabilities, put them in
``Completion.top_logprobs`` and the pointwise reranker turns them into P(yes).

The LangChain and LlamaIndex adapters (``as_rerankkit_llm``) and ``FunctionLLM`` (plain
callables) produce objects that satisfy this protocol.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Completion:
    """One LLM answer.

    Attributes:
        text: The generated text.
        top_logprobs: Optional, one entry per generated token, in order: the candidate tokens
            the provider reported at that position and their natural-log probabilities.
            ``None`` when the provider gives none.

    Example:
        >>> Completion("Yes", top_logprobs=({"Yes": -0.1, "No": -2.4},)).text
        'Yes'
    """

    text: str
    top_logprobs: Sequence[Mapping[str, float]] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Completion.text must be a str, got {type(self.text).__name__}")
        if self.top_logprobs is not None:
            frozen = tuple(
                MappingProxyType({str(tok): float(lp) for tok, lp in position.items()})
                for position in self.top_logprobs
            )
            for position in frozen:
                if any(math.isnan(lp) or lp > 1e-6 for lp in position.values()):
                    raise ValueError("Completion.top_logprobs must hold log-probabilities (<= 0)")
            object.__setattr__(self, "top_logprobs", frozen)


@runtime_checkable
class CompletionLLM(Protocol):
    """A text-completion LLM: ``complete(prompt)`` returns a ``Completion`` or a ``str``."""

    def complete(self, prompt: str) -> Completion | str: ...


@runtime_checkable
class AsyncCompletionLLM(CompletionLLM, Protocol):
    """A ``CompletionLLM`` that also has a native ``async acomplete(prompt)``."""

    async def acomplete(self, prompt: str) -> Completion | str: ...


class FunctionLLM:
    """Wraps plain callables ``prompt -> str | Completion`` into the LLM protocol.

    Args:
        fn: Synchronous completion function.
        afn: Optional native async completion function (a coroutine function).

    Example:
        >>> llm = FunctionLLM(lambda prompt: "[2] > [1]")
        >>> llm.complete("rank these").text
        '[2] > [1]'
    """

    def __init__(
        self,
        fn: Callable[[str], Completion | str],
        afn: Callable[[str], Awaitable[Completion | str]] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if afn is not None and not inspect.iscoroutinefunction(afn):
            raise TypeError("afn must be an async function (async def)")
        self.fn = fn
        self.afn = afn

    def complete(self, prompt: str) -> Completion:
        return to_completion(self.fn(prompt))

    async def acomplete(self, prompt: str) -> Completion:
        if self.afn is None:
            return await asyncio.to_thread(self.complete, prompt)
        return to_completion(await self.afn(prompt))

    def __repr__(self) -> str:
        return f"FunctionLLM({getattr(self.fn, '__name__', type(self.fn).__name__)})"


def to_completion(answer: object) -> Completion:
    """Normalise an LLM's return value to a ``Completion``.

    Example:
        >>> to_completion("no")
        Completion(text='no', top_logprobs=None)
    """
    if isinstance(answer, Completion):
        return answer
    if isinstance(answer, str):
        return Completion(answer)
    raise TypeError(f"an LLM must return str or Completion, got {type(answer).__name__}")


def as_llm(llm: object) -> CompletionLLM:
    """Accept a protocol object or a plain callable (wrapped in ``FunctionLLM``).

    Raises:
        TypeError: ``llm`` has no ``complete`` method and is not callable.
    """
    if isinstance(llm, CompletionLLM):
        return llm
    if callable(llm):
        return FunctionLLM(llm)
    raise TypeError(
        "llm must have a complete(prompt) method or be a callable prompt -> str; got "
        f"{type(llm).__name__}. Wrap LangChain/LlamaIndex models with their adapter's "
        "as_rerankkit_llm()."
    )


def has_native_async(llm: CompletionLLM) -> bool:
    """Whether ``llm`` brings its own coroutine ``acomplete``."""
    if isinstance(llm, FunctionLLM):
        return llm.afn is not None
    return inspect.iscoroutinefunction(getattr(llm, "acomplete", None))
