"""The core of every adapter's ``from_llm``: an LLM reranker plus the adapter's settings.

An adapter's ``from_llm`` wraps its framework's model with its own ``as_rerankkit_llm`` and
hands the result here; what the options mean (and how they are checked) is decided once.

Example:
    >>> from rerankkit.testing import ScriptedLLM
    >>> fields = fields_from_llm(ScriptedLLM(["[2] > [1]"]), top_n=1)
    >>> fields["top_n"], type(fields["reranker"]).__name__
    (1, 'LLMListwiseReranker')
    >>> [r.index for r in fields["reranker"].rerank("q", ["a", "b"])]
    [1, 0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rerankkit.adapting._settings import RerankFields, rerank_fields
from rerankkit.llm._factory import LLMMethod, llm_reranker
from rerankkit.llm._protocol import Completion, CompletionLLM

__all__ = ["fields_from_llm"]


def fields_from_llm(
    llm: CompletionLLM | Callable[[str], str | Completion],
    *,
    method: LLMMethod = "listwise",
    top_n: int | None = 3,
    score_threshold: float | None = None,
    reorder: Any = "none",
    **kwargs: Any,
) -> RerankFields:
    """An LLM reranker for ``llm`` and the adapter settings, checked, as constructor kwargs.

    Args:
        llm: A rerankkit LLM (``complete(prompt)``), e.g. an adapter's ``as_rerankkit_llm(model)``.
        method: ``"listwise"``, ``"pointwise"`` / ``"yes_no"`` or ``"rating"``
            (see :func:`rerankkit.llm_reranker`).
        top_n: Keep at most this many (``None`` keeps all).
        score_threshold: Keep only ``score >= score_threshold`` (before ``top_n``).
        reorder: Final ordering, see :data:`rerankkit.adapting.ReorderMode`.
        **kwargs: The LLM reranker's own options (``window_size``, ``stride``, prompts,
            ``max_concurrency``, ...), passed to :func:`rerankkit.llm_reranker`.

    Returns:
        :class:`~rerankkit.adapting.RerankFields` for ``Adapter(**fields)``.

    Raises:
        ValueError, TypeError: An unknown ``method``, a bad setting or LLM-reranker option
            (each named).

    Example:
        >>> from rerankkit.testing import ScriptedLLM
        >>> fields_from_llm(ScriptedLLM([]), method="best")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: method must be one of [...], got 'best'
    """
    reranker = llm_reranker(llm, method, **kwargs)  # cheap: no model call until a query
    return rerank_fields(reranker, top_n=top_n, score_threshold=score_threshold, reorder=reorder)
