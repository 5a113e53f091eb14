"""Any LlamaIndex LLM as a rerankkit LLM (``rerankkit.CompletionLLM``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.llms.types import CompletionResponse, LogProb

from rerankkit import Completion


def top_logprobs_from_response(
    logprobs: Sequence[Sequence[LogProb]] | None,
) -> list[dict[str, float]] | None:
    """``CompletionResponse.logprobs`` (per generated token, its candidate ``LogProb``s) as
    ``{token: logprob}`` per position; ``None`` when the LLM gave none.

    Example:
        >>> top_logprobs_from_response([[LogProb(token="Yes", logprob=-0.2),
        ...                              LogProb(token="No", logprob=-1.7)]])
        [{'Yes': -0.2, 'No': -1.7}]
    """
    if not logprobs:
        return None
    positions = []
    for candidates in logprobs:
        position: dict[str, float] = {}
        for candidate in candidates or ():
            position.setdefault(str(candidate.token), float(candidate.logprob))
        positions.append(position)
    return positions if any(positions) else None


class LlamaIndexLLM:
    """A LlamaIndex ``LLM`` behind rerankkit's ``complete``/``acomplete``.

    Uses the LLM's own ``complete``/``acomplete`` (chat LLMs route these through their chat
    endpoint) and reads ``CompletionResponse.logprobs`` when present.
    """

    def __init__(self, llm: BaseLLM, **complete_kwargs: Any) -> None:
        self.llm = llm
        self.complete_kwargs = complete_kwargs

    @staticmethod
    def _convert(response: CompletionResponse) -> Completion:
        return Completion(response.text, top_logprobs=top_logprobs_from_response(response.logprobs))

    def complete(self, prompt: str) -> Completion:
        return self._convert(self.llm.complete(prompt, **self.complete_kwargs))

    async def acomplete(self, prompt: str) -> Completion:
        return self._convert(await self.llm.acomplete(prompt, **self.complete_kwargs))

    def __repr__(self) -> str:
        return f"LlamaIndexLLM({type(self.llm).__name__})"


def as_rerankkit_llm(llm: BaseLLM, **complete_kwargs: Any) -> LlamaIndexLLM:
    """Wrap a LlamaIndex LLM (``OpenAI``, ``Ollama``, ``HuggingFaceLLM``, ...) for rerankkit.

    Args:
        llm: Any LlamaIndex ``LLM``.
        **complete_kwargs: Extra keyword arguments for every ``complete`` call (provider
            options such as ``logprobs=True, top_logprobs=5`` where the integration supports them).

    Example:
        >>> from llama_index.core.llms import MockLLM
        >>> as_rerankkit_llm(MockLLM()).complete("echo").text
        'echo'
    """
    if not isinstance(llm, BaseLLM):
        raise TypeError(f"llm must be a LlamaIndex LLM, got {type(llm).__name__}")
    return LlamaIndexLLM(llm, **complete_kwargs)
