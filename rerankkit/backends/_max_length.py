"""How many tokens a model reads: the length it declares, capped by its position limit.

A model saved by sentence-transformers keeps the length it was trained and evaluated at in the
tokenizer's ``model_max_length`` (a cross-encoder's ``max_length``, sentence-transformers PR
#3304) or, for a bi-encoder, in ``sentence_bert_config.json``'s ``max_seq_length``. Reading
past it scores text the model never saw at training time (on the shared MiniLM cross-encoder,
declared 256, a 373-token document scores 0.508 at 512 tokens and 0.0168 at 256), so every
backend that truncates resolves its length here, with one rule:

- ``max_length=None``: the declared length, capped at the position limit; without a
  declaration, the position limit; without either, the backend's fallback.
- an explicit ``max_length`` above the position limit cannot be honoured: it is lowered to the
  limit with a WARNING (never silently);
- an explicit ``max_length`` above the declared length is honoured with a WARNING (the model
  may score long inputs poorly; some long-context models are deliberately run longer).

transformers writes ``model_max_length = int(1e30)`` (``VERY_LARGE_INTEGER``) when a tokenizer
declares nothing; any value that large counts as undeclared.

Example:
    >>> from types import SimpleNamespace
    >>> bert = SimpleNamespace(max_position_embeddings=512, model_type="bert")
    >>> resolve_max_length(bert, declared=256, wanted=None, owner="ce")
    256
    >>> resolve_max_length(bert, declared=int(1e30), wanted=None, owner="ce")
    512
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

UNDECLARED = 10**18
"""``model_max_length`` values this large mean "not declared" (transformers uses ``int(1e30)``)."""

_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer"})


def position_limit(config: Any) -> int | None:
    """Most tokens the model's position embeddings address; ``None`` when the config says not.

    RoBERTa-family position ids start after the padding index, so ``pad_token_id + 1``
    positions are unusable (514 embeddings: 512 tokens).

    Example:
        >>> from types import SimpleNamespace
        >>> position_limit(SimpleNamespace(max_position_embeddings=514, model_type="xlm-roberta",
        ...                                pad_token_id=1))
        512
        >>> position_limit(SimpleNamespace(max_position_embeddings=-1)) is None  # XLNet: none
        True
    """
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return None
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        limit -= (getattr(config, "pad_token_id", 1) or 1) + 1
    return limit


def declared_length(value: Any) -> int | None:
    """A declared length (``model_max_length``, ``max_seq_length``), or ``None`` when absent.

    Example:
        >>> declared_length(256), declared_length(int(1e30)), declared_length(None)
        (256, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < UNDECLARED:
        return None
    return value


def resolve_max_length(
    config: Any,
    *,
    declared: Any,
    wanted: int | None,
    owner: str,
    fallback: int = 512,
    ceiling: int | None = None,
) -> int:
    """The tokens per input a backend runs at (see the module docstring for the rule).

    Args:
        config: The model's transformers config (``max_position_embeddings``, ``model_type``).
        declared: What the model folder declares (``tokenizer.model_max_length`` or the
            sentence-transformers ``max_seq_length``); sentinels and ``None`` mean undeclared.
        wanted: The caller's ``max_length`` (already checked as an int), or ``None``.
        owner: The reranker, as warnings name it.
        fallback: The length when neither a declaration nor a position limit exists.
        ceiling: The most a ``None`` resolves to (a causal LM runs at 1024 by default even if
            it declares 32768); ``None``: no ceiling.

    Returns:
        A token count >= 1.

    Example:
        >>> from types import SimpleNamespace
        >>> bert = SimpleNamespace(max_position_embeddings=512, model_type="bert")
        >>> resolve_max_length(bert, declared=256, wanted=100000, owner="ce")  # WARNING logged
        512
        >>> resolve_max_length(bert, declared=256, wanted=384, owner="ce")  # WARNING logged
        384
        >>> resolve_max_length(None, declared=8192, wanted=None, owner="lm", ceiling=1024)
        1024
    """
    limit = position_limit(config)
    stated = declared_length(declared)
    if stated is not None and limit is not None:
        stated = min(stated, limit)
    if wanted is None:
        length = stated or limit or fallback
        return length if ceiling is None else min(length, ceiling)
    if limit is not None and wanted > limit:
        logger.warning(
            "%s: max_length=%d exceeds the model's position limit of %d tokens; running at %d "
            "(longer inputs are truncated to it)",
            owner,
            wanted,
            limit,
            limit,
        )
        return limit
    if stated is not None and wanted > stated:
        logger.warning(
            "%s: max_length=%d is above the %d tokens the model declares (the length it was "
            "saved with); scores of inputs longer than %d may be unreliable and differ from "
            "sentence-transformers'. Leave max_length=None to run at the declared length.",
            owner,
            wanted,
            stated,
            stated,
        )
    return wanted
