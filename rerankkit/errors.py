"""Every error rerankkit raises on purpose, under one base class.

A mistake in an argument (a non-string document, ``top_n=0``, an unknown option) raises
the built-in ``TypeError`` (wrong type) or ``ValueError`` (wrong value), naming the argument
and, for sequences, the position: that is a bug in the calling code. Everything that goes
wrong *outside* the caller's arguments (a missing optional dependency, a malformed dataset
file, a model that will not load, an LLM that keeps failing) raises a ``RerankkitError``,
which also subclasses the built-in a caller would reach for first::

    RerankkitError                      catch-all for rerankkit's own failures
    ├── MissingExtraError  (ImportError)   an optional dependency is not installed
    ├── InvalidTextError   (ValueError)    a query or document is not valid Unicode
    ├── DatasetError       (ValueError)    a dataset file is missing or malformed
    ├── SpecError          (ValueError, TypeError)  a reranker spec cannot be parsed or built
    ├── CalibrationError   (ValueError)    a calibration file is malformed or for another reranker
    ├── TrainingError      (ValueError)    a training run is refused before it mines or trains
    ├── ModelLoadError     (OSError)       a model cannot be found or loaded
    ├── LLMCallError       (RuntimeError)  an LLM call failed for good (``on_error="raise"``)
    │   └── TransientLLMError              raise it from your own LLM wrapper to ask for a retry
    └── RemoteServiceError (RuntimeError)  a rerank service (Cohere, TEI, ...) failed for good

The command line reports its own usage mistakes with ``rerankkit.cli._options.CliError``, a
``RerankkitError`` and ``ValueError`` that never leaves the ``rerankkit`` command.

Example:
    >>> from rerankkit.errors import MissingExtraError, RerankkitError
    >>> error = MissingExtraError("torch", "transformers")
    >>> isinstance(error, RerankkitError), isinstance(error, ImportError)
    (True, True)
    >>> print(error)
    torch is required for this feature: pip install "rerankkit[transformers]"
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = [
    "CalibrationError",
    "DatasetError",
    "InvalidTextError",
    "LLMCallError",
    "MissingExtraError",
    "ModelLoadError",
    "RemoteServiceError",
    "RerankkitError",
    "SpecError",
    "TrainingError",
    "TransientLLMError",
]


class RerankkitError(Exception):
    """Base class of every error rerankkit raises on purpose (see the module docstring)."""


class MissingExtraError(RerankkitError, ImportError):
    """An optional dependency is missing; the message names the extra to install.

    Attributes:
        name: The module that could not be imported.
        extra: The ``rerankkit[...]`` extra that provides it.

    Example:
        >>> str(MissingExtraError("torch", "transformers"))
        'torch is required for this feature: pip install "rerankkit[transformers]"'
    """

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f'{module} is required for this feature: pip install "rerankkit[{extra}]"')
        self.name = module
        self.extra = extra

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str]]:
        return type(self), (self.name or "", self.extra)  # picklable across processes


class InvalidTextError(RerankkitError, ValueError):
    """A query or document holds a lone UTF-16 surrogate (U+D800-U+DFFF, common in text
    extracted from PDFs), which is not valid Unicode: no tokenizer, JSON encoder or HTTP client
    can carry it. Refused where the text enters rerankkit, before any model or service call;
    the message names the argument (``query``, ``documents[i]``) and the character offset.
    Clean the text first, e.g. ``text.encode("utf-8", "replace").decode("utf-8")``.

    Attributes:
        argument: ``"query"``, ``"documents[3]"``, ...
        offset: Position of the first lone surrogate in the text, in characters.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> try:
        ...     KeywordReranker().rerank("paris", ["fine", "a \\ud800 b"])
        ... except InvalidTextError as error:
        ...     print(error)
        documents[1] is not valid Unicode: lone surrogate U+D800 at character 2
    """

    def __init__(self, argument: str, offset: int, character: str) -> None:
        super().__init__(
            f"{argument} is not valid Unicode: lone surrogate U+{ord(character):04X} at "
            f"character {offset}"
        )
        self.argument = argument
        self.offset = offset
        self.character = character

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        return type(self), (self.argument, self.offset, self.character)


class DatasetError(RerankkitError, ValueError):
    """A dataset file is missing or malformed; the message names the file and, where it
    applies, the line number.

    Example:
        >>> from rerankkit.eval._datasets import parse_queries
        >>> try:
        ...     parse_queries(['{"_id": "q1", "text": "ok"}', "{bad"], source="queries.jsonl")
        ... except DatasetError as error:
        ...     print(error)
        queries.jsonl:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)
    """


class SpecError(RerankkitError, ValueError, TypeError):
    """A reranker spec string (``KIND:TARGET?OPTION=VALUE``) cannot be parsed or built: bad
    syntax, an unknown kind or option, or an option value the reranker refuses (its own
    ``TypeError``/``ValueError`` chained as ``__cause__``). The message quotes the spec.

    It is both a ``ValueError`` and a ``TypeError``, so code that catches what the reranker's
    constructor raises for the same option catches it from a spec too."""


class TrainingError(RerankkitError, ValueError):
    """A training run refused, before it mines or trains wherever it can be known then: the
    output folder, a checkpoint, the evaluation data or the starting model does not fit the
    configuration, or the data gives the loss nothing to train on. The message names the
    setting and what to do instead."""


class ModelLoadError(RerankkitError, OSError):
    """A model cannot be found or loaded; the message names the model and says why, and the
    original error is chained as ``__cause__``.

    Example:
        >>> from rerankkit._specs import build_reranker
        >>> try:
        ...     build_reranker("cross-encoder:/no/such/model")
        ... except ModelLoadError as error:
        ...     print(str(error)[:60])
        reranker spec 'cross-encoder:/no/such/model': cannot load cr
    """


class LLMCallError(RerankkitError, RuntimeError):
    """An LLM call failed after its retries and the reranker was told to raise
    (``on_error="raise"``); the provider's own error is chained as ``__cause__``."""


class TransientLLMError(LLMCallError):
    """Raise this from your own LLM wrapper to mark a failure as worth retrying."""


class RemoteServiceError(RerankkitError, RuntimeError):
    """A remote rerank service failed for good: retries exhausted, an answer that is not a
    retryable failure (401, 400, ...), or a malformed answer (bad JSON; an index omitted,
    repeated or invented). No partial ranking is returned: the caller keeps every document.

    The message and attributes never contain the API key.

    Attributes:
        service: The service's name (``"cohere"``, ``"tei"``, ...).
        status: The HTTP status of the last answer; ``None`` when none came (timeout,
            connection refused or dropped).
        body_excerpt: At most 500 characters of the last answer's body (``""`` if none).

    Example:
        >>> error = RemoteServiceError("cohere", 401, '{"message": "invalid api token"}')
        >>> print(error)
        cohere: HTTP 401: {"message": "invalid api token"}
        >>> error.status, isinstance(error, RuntimeError)
        (401, True)
    """

    def __init__(
        self, service: str, status: int | None, body_excerpt: str = "", *, reason: str = ""
    ) -> None:
        where = f"HTTP {status}" if status is not None else "no answer"
        detail = "; ".join(part for part in (reason, body_excerpt) if part)
        super().__init__(f"{service}: {where}: {detail}" if detail else f"{service}: {where}")
        self.service = service
        self.status = status
        self.body_excerpt = body_excerpt
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        rebuild = functools.partial(RemoteServiceError, reason=self.reason)
        return rebuild, (self.service, self.status, self.body_excerpt)


class CalibrationError(RerankkitError, ValueError):
    """A calibration file that cannot be read or used: malformed, of another format, a map
    that is not monotone, or fitted for another reranker (the message says which)."""
