"""``llm_reranker``: one entry point from an LLM to a reranker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from rerankkit._base import Reranker
from rerankkit._validation import check_choice
from rerankkit.llm._protocol import Completion, CompletionLLM

LLMMethod = Literal["listwise", "pointwise", "yes_no", "rating"]


def llm_reranker(
    llm: CompletionLLM | Callable[[str], str | Completion],
    method: LLMMethod = "listwise",
    **kwargs: Any,
) -> Reranker:
    """Build an LLM reranker.

    Args:
        llm: An object with ``complete(prompt)`` or a callable ``prompt -> str``. The adapters'
            ``from_llm`` pass LangChain/LlamaIndex models through ``as_rerankkit_llm`` first.
        method: ``"listwise"`` (``LLMListwiseReranker``), ``"pointwise"`` or ``"yes_no"``
            (``LLMPointwiseReranker`` scoring P(yes)), ``"rating"`` (``LLMPointwiseReranker``
            with graded answers).
        **kwargs: Passed to the reranker's constructor.

    Example:
        >>> reranker = llm_reranker(lambda prompt: "[2] > [1]", method="listwise", window_size=10)
        >>> [r.index for r in reranker.rerank("q", ["a", "b"])]
        [1, 0]
    """
    check_choice(method, "method", ("listwise", "pointwise", "yes_no", "rating"))
    if method == "listwise":
        from rerankkit.llm._listwise import LLMListwiseReranker

        return LLMListwiseReranker(llm, **kwargs)
    from rerankkit.llm._pointwise import LLMPointwiseReranker

    return LLMPointwiseReranker(llm, method="rating" if method == "rating" else "yes_no", **kwargs)
