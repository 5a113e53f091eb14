"""Output heads in float32 when the weights are bfloat16/float16.

A relevance score is read from a handful of output numbers. Computed in bfloat16 (8 bits of
mantissa) a logit near 5 is rounded to a multiple of 1/32, so documents whose float32 scores
differ by a few thousandths get the same score and fall back to input order (four paraphrases
of one answer got three identical scores in a bug report). The transformer body keeps the low
precision, which is where the speed is; only the last, tiny layers run in float32: the
classification head of a sequence classifier, and the answer-token rows of a causal LM's
output layer. Their inputs are still rounded, so low precision still perturbs scores a little,
but continuously: distinct documents no longer collapse onto one value.

Both functions change the model in place (forward hooks) and do nothing to a float32 model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankkit._optional import require


def _floats_to_float32(value: Any) -> Any:
    torch = require("torch", "transformers")
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    return value


def _inputs_to_float32(
    _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (
        tuple(_floats_to_float32(a) for a in args),
        {k: _floats_to_float32(v) for k, v in kwargs.items()},
    )


def head_in_float32(model: Any) -> None:
    """Run a sequence classifier's head in float32 (weights and inputs); a float32 model is
    left as it is.

    The head is every direct child of the model except its base model (``classifier`` of
    BERT/RoBERTa/XLM-R, ``score`` of Qwen2/Llama, ``pooler`` + ``classifier`` of DeBERTa,
    ``head`` + ``classifier`` of ModernBERT), plus the base model's ``pooler`` (BERT), since
    the classifier reads its output. A module sharing a weight with the base model is left
    alone (casting it would change the body too).

    Args:
        model: A loaded ``*ForSequenceClassification`` model.

    Example (``model`` loaded with ``dtype=torch.bfloat16``)::

        head_in_float32(model)  # bert.pooler and classifier for a BERT cross-encoder
        model(**inputs).logits.dtype  # torch.float32
    """
    torch = require("torch", "transformers")
    if getattr(model, "dtype", torch.float32) == torch.float32:
        return
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    parts = [child for child in model.children() if child is not base]
    pooler = getattr(base, "pooler", None)
    if isinstance(pooler, torch.nn.Module):
        parts.append(pooler)
    shared = (
        {id(p) for n, p in base.named_parameters() if not n.startswith("pooler.")}
        if isinstance(base, torch.nn.Module)
        else set()
    )
    for module in parts:
        params = list(module.parameters())
        if not any(p.is_floating_point() for p in params) or any(id(p) in shared for p in params):
            continue
        module.float()
        module.register_forward_pre_hook(_inputs_to_float32, with_kwargs=True)


class _AnswerRowsInFloat32:
    """Forward hook of an output layer: the given vocabulary columns recomputed in float32."""

    def __init__(self, layer: Any, token_ids: Sequence[int]) -> None:
        torch = require("torch", "transformers")
        self.token_ids = torch.as_tensor(list(token_ids), device=layer.weight.device)
        self.weight = layer.weight.detach()[self.token_ids].float()
        bias = getattr(layer, "bias", None)
        self.bias = None if bias is None else bias.detach()[self.token_ids].float()

    def __call__(self, _module: Any, args: tuple[Any, ...], output: Any) -> Any:
        hidden = args[0].float()
        exact = hidden @ self.weight.T
        if self.bias is not None:
            exact = exact + self.bias
        out = output.float()
        out[..., self.token_ids] = exact
        return out


def answer_logits_in_float32(model: Any, token_ids: Sequence[int]) -> None:
    """Compute a causal LM's logits of ``token_ids`` (e.g. "yes"/"no") in float32.

    The output layer stays in the model's dtype (its full float32 copy could be hundreds of
    MB and may be tied to the input embeddings); a hook recomputes only the answer columns
    from the layer's input with float32 copies of their weight rows, and returns the logits
    as float32, so whatever the model applies after (scaling, soft-capping) runs in float32.
    Nothing is done to a float32 model or one without an output layer.
    """
    torch = require("torch", "transformers")
    layer = model.get_output_embeddings()
    if getattr(model, "dtype", torch.float32) != torch.float32 and layer is not None:
        layer.register_forward_hook(_AnswerRowsInFloat32(layer, token_ids))
