"""Any LangChain chat model or LLM as a rerankkit LLM (``rerankkit.CompletionLLM``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.language_models.llms import BaseLLM
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, merge_configs

from rerankkit import Completion


def top_logprobs_from_metadata(logprobs: Any) -> list[dict[str, float]] | None:
    """Per generated token, ``{candidate token: logprob}``, from a provider's logprobs payload.

    Understands the OpenAI chat shape that ``ChatOpenAI(logprobs=True, top_logprobs=k)``
    puts in ``response_metadata["logprobs"]`` (``{"content": [{"token", "logprob",
    "top_logprobs": [{"token", "logprob"}, ...]}, ...]}``), a bare list of such entries, and
    the legacy completions shape (``{"tokens", "token_logprobs", "top_logprobs": [{tok: lp}]}``)
    found in ``generation_info["logprobs"]`` of completion LLMs. Anything else gives ``None``.

    Example:
        >>> top = [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.3}]
        >>> top_logprobs_from_metadata(
        ...     {"content": [{"token": "Yes", "logprob": -0.1, "top_logprobs": top}]})
        [{'Yes': -0.1, 'No': -2.3}]
    """
    if isinstance(logprobs, Mapping) and isinstance(logprobs.get("content"), Sequence):
        logprobs = logprobs["content"]
    if isinstance(logprobs, Mapping) and isinstance(logprobs.get("top_logprobs"), Sequence):
        positions = [dict(p) for p in logprobs["top_logprobs"] if isinstance(p, Mapping)]
        return [{str(t): float(lp) for t, lp in p.items()} for p in positions] or None
    if not isinstance(logprobs, Sequence) or isinstance(logprobs, str) or not logprobs:
        return None
    result: list[dict[str, float]] = []
    for entry in logprobs:
        if not isinstance(entry, Mapping) or "token" not in entry:
            return None
        position = {str(entry["token"]): float(entry["logprob"])}
        for candidate in entry.get("top_logprobs") or ():
            if isinstance(candidate, Mapping) and "token" in candidate:
                position.setdefault(str(candidate["token"]), float(candidate["logprob"]))
        result.append(position)
    return result


def _message_text(message: BaseMessage) -> str:
    text = message.text
    return str(text() if callable(text) and not isinstance(text, str) else text)


class LangChainLLM:
    """A LangChain ``BaseLanguageModel`` behind rerankkit's ``complete``/``acomplete``.

    Chat models get the prompt as one human message; completion LLMs get it as text.
    Log-probabilities come from ``response_metadata["logprobs"]`` (chat) or
    ``generation_info["logprobs"]`` (LLMs) when the provider returns them.

    Each call runs with the LangChain config of the run it happens in (a
    ``RerankKitCompressor`` run, or any runnable's) merged with ``config``, so its callbacks
    see each model call as a child run.
    """

    def __init__(
        self,
        model: BaseLanguageModel[Any] | Runnable[Any, Any],
        *,
        config: RunnableConfig | None = None,
    ) -> None:
        self.model = model
        self.config = config

    def _from_llm_result(self, result: LLMResult) -> Completion:
        generation = result.generations[0][0]
        info = generation.generation_info or {}
        logprobs = top_logprobs_from_metadata(info.get("logprobs"))
        return Completion(generation.text, top_logprobs=logprobs)

    def _from_output(self, output: Any) -> Completion:
        if isinstance(output, BaseMessage):
            logprobs = top_logprobs_from_metadata(output.response_metadata.get("logprobs"))
            return Completion(_message_text(output), top_logprobs=logprobs)
        if isinstance(output, str):
            return Completion(output)
        raise TypeError(f"the LangChain model returned {type(output).__name__}, not text")

    def _config(self) -> RunnableConfig:
        # ensure_config() reads the current run's config (callbacks, tags) from LangChain's
        # context variable; an explicit config given here adds to it rather than replacing it.
        return merge_configs(ensure_config(), self.config)

    def complete(self, prompt: str) -> Completion:
        config = self._config()
        if isinstance(self.model, BaseLLM):
            return self._from_llm_result(self.model.generate([prompt], **_generate_kwargs(config)))
        return self._from_output(self.model.invoke(prompt, config=config))

    async def acomplete(self, prompt: str) -> Completion:
        config = self._config()
        if isinstance(self.model, BaseLLM):
            return self._from_llm_result(
                await self.model.agenerate([prompt], **_generate_kwargs(config))
            )
        return self._from_output(await self.model.ainvoke(prompt, config=config))

    def __repr__(self) -> str:
        return f"LangChainLLM({type(self.model).__name__})"


def _generate_kwargs(config: RunnableConfig) -> dict[str, Any]:
    return {key: config.get(key) for key in ("callbacks", "tags", "metadata", "run_name")}


def check_model(model: Any, argument: str) -> None:
    """Raise a TypeError naming ``argument`` unless ``model`` is a LangChain model or runnable.

    Example:
        >>> check_model("gpt-4o", "llm")
        Traceback (most recent call last):
        TypeError: llm must be a LangChain BaseLanguageModel or Runnable, got str
    """
    if not isinstance(model, (BaseLanguageModel, Runnable)):
        raise TypeError(
            f"{argument} must be a LangChain BaseLanguageModel or Runnable, "
            f"got {type(model).__name__}"
        )


def as_rerankkit_llm(
    model: BaseLanguageModel[Any] | Runnable[Any, Any],
    *,
    top_logprobs: int | None = None,
    config: RunnableConfig | None = None,
) -> LangChainLLM:
    """Wrap a LangChain chat model or LLM for rerankkit's LLM rerankers.

    Args:
        model: Any ``BaseLanguageModel`` (``ChatOpenAI``, ``ChatAnthropic``, ``ChatOllama``,
            ``OpenAI``, ...) or a runnable built from one (``model.bind(...)``).
        top_logprobs: When set, binds ``logprobs=True, top_logprobs=k`` (OpenAI-compatible
            chat models) so the pointwise reranker can score P(yes) instead of parsing text.
        config: A ``RunnableConfig`` (callbacks, tags, ...) passed to every call.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel
        >>> llm = as_rerankkit_llm(FakeListChatModel(responses=["[2] > [1]"]))
        >>> llm.complete("rank these").text
        '[2] > [1]'
    """
    check_model(model, "model")
    if top_logprobs is not None:
        if isinstance(model, BaseLLM) or not 0 <= top_logprobs <= 20:
            raise ValueError("top_logprobs needs a chat model and 0 <= top_logprobs <= 20")
        model = model.bind(logprobs=True, top_logprobs=top_logprobs)
    return LangChainLLM(model, config=config)
