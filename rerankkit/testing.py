"""Deterministic rerankers for tests, yours and ours: no model, no randomness."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from rerankkit._base import Reranker
from rerankkit._pickling import LocksDropped
from rerankkit.llm._protocol import Completion, to_completion

__all__ = [
    "ConcurrencyRecordingLLM",
    "FixedScoreReranker",
    "FunctionReranker",
    "KeywordReranker",
    "OracleLLM",
    "ScriptedLLM",
]

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class FunctionReranker(Reranker):
    """Scores with a plain function ``(query, document) -> float``; counts its calls.

    Example:
        >>> FunctionReranker(lambda q, d: -len(d)).rerank("q", ["long text", "short"])[0].index
        1
    """

    def __init__(self, fn: Callable[[str, str], float]) -> None:
        self.fn = fn
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def pointwise(self) -> bool:
        """``True``: the function sees one (query, document) pair at a time."""
        return True

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        with self._lock:
            self.calls += 1
        return [self.fn(query, doc) for doc in documents]


def _shared_words(query: str, document: str) -> float:
    terms = set(_words(query))
    return float(sum(word in terms for word in _words(document)))


class KeywordReranker(FunctionReranker):
    """Scores a document by how many of its words occur in the query (case-insensitive).

    Example:
        >>> KeywordReranker().score("red apple", ["an apple", "red apple pie", "pear"])
        [1.0, 2.0, 0.0]
    """

    def __init__(self) -> None:
        super().__init__(_shared_words)


class FixedScoreReranker(Reranker):
    """Returns the given scores for any input of the same length (for ordering tests).

    Not ``pointwise``: a document's score is its position's, whatever the document is.

    Example:
        >>> FixedScoreReranker([0.2, 0.8]).rerank("q", ["a", "b"])[0].index
        1
    """

    def __init__(self, scores: Sequence[float]) -> None:
        self.scores = list(scores)
        self.calls = 0

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        self.calls += 1
        return self.scores


# --- Fake LLMs for the LLM rerankers (rerankkit.CompletionLLM protocol) ---------------------

ScriptStep = str | Completion | BaseException | Callable[[str], "str | Completion"]
_PASSAGE_LINE = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)


class ScriptedLLM(LocksDropped):
    """Answers from a script, one step per call, in call order; records the prompts.

    A step is a str or ``Completion`` (returned), an exception instance (raised, to simulate
    provider errors) or a callable ``prompt -> str | Completion``. When the script runs out,
    the last step repeats if ``repeat_last`` else the call raises ``RuntimeError``.

    Example:
        >>> llm = ScriptedLLM(["[2] > [1]", TimeoutError("slow")])
        >>> llm.complete("p1").text
        '[2] > [1]'
        >>> llm.complete("p2")
        Traceback (most recent call last):
        ...
        TimeoutError: slow
    """

    def __init__(self, script: Iterable[ScriptStep], *, repeat_last: bool = False) -> None:
        self.script = list(script)
        self.repeat_last = repeat_last
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.prompts)

    def complete(self, prompt: str) -> Completion:
        with self._lock:
            position = len(self.prompts)
            self.prompts.append(prompt)
        if position >= len(self.script):
            if not (self.repeat_last and self.script):
                raise RuntimeError(f"ScriptedLLM script exhausted after {len(self.script)} calls")
            position = len(self.script) - 1
        step = self.script[position]
        if isinstance(step, BaseException):
            raise step
        if callable(step) and not isinstance(step, (str, Completion)):
            step = step(prompt)
        return to_completion(step)


class OracleLLM(LocksDropped):
    """A listwise LLM that knows the truth: it orders each window by hidden relevance.

    It reads the ``[i] text`` passage lines of a listwise prompt and answers
    ``[i] > [j] > ...`` by descending ``relevance(text)`` (ties keep window order). Used to
    prove what one sliding pass can do.

    Example:
        >>> oracle = OracleLLM({"low": 0.0, "high": 1.0})
        >>> oracle.complete("[1] low\\n[2] high").text
        '[2] > [1]'
    """

    def __init__(self, relevance: Mapping[str, float] | Callable[[str], float]) -> None:
        self.relevance = relevance.__getitem__ if isinstance(relevance, Mapping) else relevance
        self.window_sizes: list[int] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.window_sizes)

    def complete(self, prompt: str) -> Completion:
        passages = [(int(i), text) for i, text in _PASSAGE_LINE.findall(prompt)]
        if not passages:
            raise ValueError("OracleLLM got a prompt without '[i] text' passage lines")
        with self._lock:
            self.window_sizes.append(len(passages))
        ordered = sorted(passages, key=lambda item: -self.relevance(item[1]))
        return Completion(" > ".join(f"[{i}]" for i, _ in ordered))


class ConcurrencyRecordingLLM(LocksDropped):
    """Records how many calls overlap (``max_concurrency``: the most at once, so far); each
    call takes ``delay`` seconds.

    Has both ``complete`` (sleeps in the calling thread) and native ``acomplete``.

    Example:
        >>> llm = ConcurrencyRecordingLLM("yes", delay=0.0)
        >>> llm.complete("p").text, llm.max_concurrency
        ('yes', 1)
    """

    def __init__(
        self, answer: str | Callable[[str], str | Completion] = "yes", *, delay: float = 0.05
    ) -> None:
        self.answer = answer
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_concurrency = 0
        self._lock = threading.Lock()

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, prompt: str) -> Completion:
        return to_completion(self.answer if isinstance(self.answer, str) else self.answer(prompt))

    def complete(self, prompt: str) -> Completion:
        with self._in_flight():
            time.sleep(self.delay)
            return self._answer(prompt)

    async def acomplete(self, prompt: str) -> Completion:
        with self._in_flight():
            await asyncio.sleep(self.delay)
            return self._answer(prompt)
