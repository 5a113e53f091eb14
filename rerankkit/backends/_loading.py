"""Load-time checks of a checkpoint against the model class it is loaded into.

Two silent failures of ``from_pretrained`` that turn a reranker into a random number generator
or a crash at the first batch:

* A checkpoint without the weights the class needs (a bi-encoder or base model loaded as a
  sequence classifier): transformers initialises them at random and hides the notice, so
  scores change on every load. :func:`untrained_weights` reads them from the loading info
  (``output_loading_info=True``) and :func:`check_trained` refuses them unless the caller
  opted in.
* A decoder-style classifier (Llama/Qwen ``*ForSequenceClassification``) whose config has no
  ``pad_token_id``: it cannot find each row's last token and refuses batches of more than one.
  :func:`ensure_pad_token` sets it from the tokenizer at load.

Example:
    >>> untrained_weights({"missing_keys": {"classifier.weight", "classifier.bias"},
    ...                    "mismatched_keys": set()})
    ['classifier.bias', 'classifier.weight']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rerankkit.errors import ModelLoadError

logger = logging.getLogger(__name__)

_LISTED = 6  # weight names quoted in a message


def untrained_weights(info: Mapping[str, Any]) -> list[str]:
    """Weights transformers initialised at random: missing from the checkpoint, or re-made
    because their shape did not match (``ignore_mismatched_sizes=True``), sorted.

    Args:
        info: The loading info ``from_pretrained(..., output_loading_info=True)`` returns.

    Example:
        >>> untrained_weights({"missing_keys": set(), "mismatched_keys": {("score.weight", 1, 2)}})
        ['score.weight']
    """
    missing = {str(key) for key in info.get("missing_keys") or ()}
    mismatched = {
        str(key[0] if isinstance(key, tuple) else key) for key in info.get("mismatched_keys") or ()
    }
    return sorted(missing | mismatched)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def check_trained(
    names: list[str], *, model: str, what: str, opt_in: str | None = None, allowed: bool = False
) -> None:
    """Refuse a model whose ``names`` weights were initialised at random.

    Args:
        names: From :func:`untrained_weights`.
        model: The model id or folder (quoted in the message).
        what: What it was loaded as (``"cross-encoder"``, ``"causal LM"``).
        opt_in: The constructor argument that accepts such a model (``"allow_untrained_head"``),
            or ``None`` when there is none.
        allowed: The caller set ``opt_in``: log a warning instead of raising.

    Raises:
        ModelLoadError: ``names`` is not empty and ``allowed`` is false; the message names the
            model, the missing weights and the way out.

    Example:
        >>> check_trained(["classifier.weight"], model="all-MiniLM-L6-v2", what="cross-encoder",
        ...               opt_in="allow_untrained_head")
        Traceback (most recent call last):
        rerankkit.errors.ModelLoadError: 'all-MiniLM-L6-v2' is not a trained cross-encoder: its checkpoint has no classifier.weight, so these weights would be initialised at random (random scores that change on every load). A bi-encoder or base model? Use EmbeddingReranker for a bi-encoder, or pass allow_untrained_head=True to start from an untrained head (e.g. to fine-tune it).
    """  # noqa: E501 (the real message)
    if not names:
        return
    if allowed:
        logger.warning(
            "%r: %d weights are newly initialised (%s); %s=True, so its scores are random "
            "until it is fine-tuned",
            model,
            len(names),
            _listed(names),
            opt_in,
        )
        return
    way_out = (
        f"Use EmbeddingReranker for a bi-encoder, or pass {opt_in}=True to start from an "
        "untrained head (e.g. to fine-tune it)."
        if opt_in
        else "Pass a checkpoint that includes them."
    )
    raise ModelLoadError(
        f"{model!r} is not a trained {what}: its checkpoint has no {_listed(names)}, so these "
        "weights would be initialised at random (random scores that change on every load). "
        f"A bi-encoder or base model? {way_out}"
    )


def ensure_pad_token(config: Any, tokenizer: Any) -> int:
    """Make the config and the tokenizer agree on a padding token id, and return it.

    Decoder-style sequence classifiers find each row's last real token by looking for
    ``config.pad_token_id``; without one they refuse batches of more than one, and with a
    different id than the one the batch is padded with they read the wrong token. The id is
    the config's, else the tokenizer's pad, else its end-of-sequence token (what Llama/Qwen
    rerankers are fine-tuned with), skipping ids outside the model's vocabulary; both objects
    are updated in place.

    Returns:
        The padding id; 0 (and neither object changed) when neither names a usable pad or
        end-of-sequence token.
    """
    vocab = getattr(config, "vocab_size", None)
    eos = getattr(config, "eos_token_id", None)
    eos = eos[0] if isinstance(eos, (list, tuple)) and eos else eos
    candidates = (
        getattr(config, "pad_token_id", None),
        tokenizer.pad_token_id,
        tokenizer.eos_token_id,
        eos,
    )
    # A tokenizer class may bring a default pad token the model's vocabulary does not have.
    usable = [
        int(i)
        for i in candidates
        if isinstance(i, int) and i >= 0 and (not isinstance(vocab, int) or i < vocab)
    ]
    if not usable:
        return 0
    pad = usable[0]
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = pad
        logger.debug("config has no pad_token_id; using %d (tokenizer pad/eos)", pad)
    if tokenizer.pad_token_id != pad:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)
    return pad
