"""The starting model: an existing cross-encoder, or a plain encoder with a new head on request.

A folder (or hub id) whose ``config.json`` names a ``...ForSequenceClassification``
architecture, and whose checkpoint holds that head's weights, is a cross-encoder and is trained
as it is. Anything else (a BERT/MiniLM encoder, a sentence-transformers bi-encoder, a classifier
config saved without its head) would get a freshly, randomly initialised classification head --
a model that ranks at random until trained -- so it is refused unless the caller opts in with
``new_head=True`` (``rerankkit train --new-head``), the same explicit opt-in
``CrossEncoderReranker(..., allow_untrained_head=True)`` asks for, detected the same way
(``backends._loading.untrained_weights``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from rerankkit._optional import require
from rerankkit.backends._hf import Source, load_pretrained
from rerankkit.backends._loading import check_trained, untrained_weights
from rerankkit.errors import ModelLoadError, TrainingError

EXTRA = "train"


def require_train_extra() -> None:
    """Every module of ``rerankkit[train]``, before anything is read, mined or written.

    Leaves first: sentence-transformers imports the others, and a module missing under it
    would read as a broken install rather than a missing extra.

    Raises:
        MissingExtraError: One is missing (``pip install "rerankkit[train]"``).
    """
    require("datasets", EXTRA)
    require("accelerate", EXTRA)
    require("transformers", EXTRA)
    require("sentence_transformers", EXTRA)


def is_cross_encoder(architectures: Sequence[str] | None) -> bool:
    """Whether a ``config.json`` ``architectures`` list names a sequence classifier.

    Example:
        >>> is_cross_encoder(["BertForSequenceClassification"]), is_cross_encoder(["BertModel"])
        (True, False)
    """
    return any(name.endswith("ForSequenceClassification") for name in architectures or ())


def starting_config(model: str, *, new_head: bool) -> Any:
    """The starting model's ``config.json``, refused unless it can be trained as asked.

    Reads the config only (no weights), so a misspelt or unusable ``model`` is refused before
    any mining or teacher scoring.

    Raises:
        TrainingError: A plain encoder without ``new_head``, or a cross-encoder with more than one
            output logit (the ranking losses train a single relevance logit).
        ModelLoadError: The model cannot be found, or its config cannot be read.
    """
    transformers = require("transformers", EXTRA)
    config = load_pretrained(
        Source(model), transformers.AutoConfig.from_pretrained, "starting model"
    )
    architectures = getattr(config, "architectures", None)
    if is_cross_encoder(architectures):
        if config.num_labels != 1:
            raise TrainingError(
                f"model {model!r} has {config.num_labels} output logits; training needs a "
                "1-logit cross-encoder (or a plain encoder with new_head=True)"
            )
    elif not new_head:
        raise TrainingError(
            f"model {model!r} is a plain encoder (architectures={architectures}), not a "
            "cross-encoder: training it means starting from a new, randomly initialised "
            "classification head. Pass new_head=True (rerankkit train --new-head) to do that."
        )
    return config


def load_student(model: str, *, new_head: bool, max_length: int) -> Any:
    """A sentence-transformers ``CrossEncoder`` with one output logit, ready to train.

    Args:
        model: Hub id or local folder.
        new_head: Allow a plain encoder and give it a new, untrained 1-logit head.
        max_length: Most tokens per (query, passage) pair when training.

    Raises:
        TrainingError: See :func:`starting_config`.
        ModelLoadError: The model cannot be found or loaded, or its config names a classifier
            but its checkpoint lacks (some of) the head's weights and ``new_head`` is false.
    """
    require("sentence_transformers", EXTRA)
    transformers = require("transformers", EXTRA)
    from sentence_transformers.cross_encoder import CrossEncoder

    source = Source(model)
    config = starting_config(model, new_head=new_head)
    kwargs: dict[str, Any] = {}
    if is_cross_encoder(getattr(config, "architectures", None)):
        # The config alone does not prove the head was trained: ask the loader what it had to
        # initialise (one extra load of the weights, small next to any training run).
        load = functools.partial(
            transformers.AutoModelForSequenceClassification.from_pretrained,
            config=config,
            output_loading_info=True,
        )
        _, info = load_pretrained(source, load, "starting model")
        check_trained(
            untrained_weights(info),
            model=source.name,
            what="cross-encoder",
            opt_in="new_head",
            allowed=new_head,
        )
    else:  # a plain encoder, new_head=True (starting_config refused it otherwise)
        kwargs = {"num_labels": 1}
    try:
        return CrossEncoder(model, max_length=max_length, **kwargs)
    except OSError as error:
        raise ModelLoadError(f"cannot load starting model {model!r}: {error}") from error
