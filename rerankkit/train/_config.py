"""``TrainConfig``: everything a training run depends on, each value checked once, here.

A pydantic model: every field is typed and constrained, and documented by the string after it
(``rerankkit train`` shows the same text as its ``--help``, and takes its defaults from here).
Only the rules between fields are written as code. What needs the file system (the output
folder, checkpoints, the evaluation data) is checked by
:func:`rerankkit.train._trainer.check_start` when a run starts. Light to import: no torch.

Example:
    >>> config = TrainConfig(model="m", data="scifact", output="out", loss="margin")
    >>> config.negatives, config.ranks, config.eval_top_n
    (5, (10, 100), 100)
    >>> TrainConfig(model="m", data="d", output="o", loss="marginmse")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for TrainConfig
      Value error, loss 'marginmse' distils a teacher: give teacher=[SPEC, ...] ...
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from rerankkit._renamed import refuse_renamed_arguments

Loss = Literal["bce", "margin", "marginmse", "listwise"]
FirstStage = Literal["bm25", "dense", "hybrid"]
Sampling = Literal["top", "random"]


def _path_text(value: Any) -> Any:
    """A path given as ``pathlib.Path`` is kept as ``str`` (``training.json`` records it)."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _spec_list(value: Any) -> Any:
    if isinstance(value, str):  # tuple("keyword:") would be its characters
        raise TypeError(
            f"teacher must be a list of reranker specs, got the str {value!r}: "
            f"write teacher=[{value!r}]"
        )
    return value


PathText = Annotated[str, BeforeValidator(_path_text)]
_Finite = Field(allow_inf_nan=False)


class TrainConfig(BaseModel):
    """Everything a training run depends on (recorded in ``training.json`` and the card).

    Raises:
        ValueError: A pydantic ``ValidationError`` naming the field: a value of the wrong
            type (strict: ``"16"`` is not a batch size), out of range, or not one of the
            choices; ``ranks`` out of order; ``loss="marginmse"`` without a teacher, or a
            teacher with another loss; ``eval_depth`` (renamed ``eval_top_n``).
        TypeError: ``teacher`` given as one string instead of a list.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )

    model: PathText
    """starting cross-encoder (hub id or folder), or a plain encoder with --new-head"""
    new_head: bool = False
    """allow a plain encoder: train a new, randomly initialised 1-logit head"""
    data: PathText
    """BEIR folder with qrels/<split>.tsv, or JSONL of {query, positive, negative} triples /
    {query, passage, label} pairs"""
    split: str = "train"
    """training qrels split of a BEIR folder"""
    output: PathText
    """folder for the trained model, its card (README.md), training.json and checkpoints/"""
    loss: Loss = "bce"
    """bce, margin (pairwise hinge), marginmse (distils --teacher) or listwise (LambdaLoss)"""
    margin: Annotated[float, _Finite] = Field(1.0, ge=0)
    """the hinge margin of --loss margin, in logits"""
    teacher: Annotated[tuple[str, ...], BeforeValidator(_spec_list)] = Field(
        (), strict=False, json_schema_extra={"metavar": ["SPEC"]}
    )
    """teacher reranker spec for marginmse (repeatable: several are fused by a z-scored sum
    per query)"""
    first_stage: FirstStage = "bm25"
    """miner and evaluation first stage (as rerankkit eval)"""
    negatives: int = Field(5, ge=0)
    """negatives mined per query (0: none; BEIR data only)"""
    ranks: tuple[int, int] = Field(
        (10, 100), strict=False, json_schema_extra={"metavar": ["FIRST", "LAST"]}
    )
    """first-stage rank window to mine from, 1-based, both included"""
    max_queries: int | None = Field(None, ge=1)
    """train on a seeded sample of this many queries"""
    sampling: Sampling = "top"
    """top: the hardest of the window; random: a seeded sample of it"""
    epochs: Annotated[float, _Finite] = Field(1.0, gt=0)
    """passes over the rows (fractions allowed); --max-steps overrides it"""
    max_steps: int | None = Field(None, ge=1)
    """optimizer steps to take"""
    batch_size: int = Field(16, ge=1)
    """rows per step (a margin/marginmse row is 2 pairs, a listwise row one query's list)"""
    learning_rate: Annotated[float, _Finite] = Field(2e-5, gt=0)
    """AdamW learning rate (linear decay after warmup)"""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """share of the steps spent warming up (below 1: transformers reads 1 or more as a count
    of steps)"""
    weight_decay: Annotated[float, _Finite] = Field(0.01, ge=0)
    """AdamW weight decay"""
    max_length: int = Field(256, ge=8)
    """tokens per (query, passage) pair"""
    seed: int = Field(12, ge=0, le=2**32 - 1)
    """seeds data order, head initialisation and sampling (numpy's range)"""
    bf16: bool | None = None
    """bf16 mixed precision (default: where the device multiplies bf16 natively: a CUDA GPU
    that supports it, a CPU with AVX512-BF16 or AMX)"""
    save_steps: int = Field(100, ge=1)
    """checkpoint every this many steps (the last 2 are kept)"""
    eval_data: PathText | None = None
    """BEIR folder for the before/after evaluation (default: --data when it is one)"""
    eval_split: str | None = "test"
    """qrels split of the before/after evaluation (None, rerankkit train --no-eval: none)"""
    eval_top_n: int = Field(100, ge=1)
    """candidates reranked per query in the evaluation"""
    eval_dtype: str = "auto"
    """scoring dtype of the evaluation"""
    bm25_language: str | None = "english"
    """BM25 analyser language for mining and evaluation"""
    progress: bool | None = None
    """progress bars (default: when stderr is a terminal)"""

    @model_validator(mode="before")
    @classmethod
    def _refuse_old_names(cls, values: Any) -> Any:
        if isinstance(values, dict):
            refuse_renamed_arguments(values, {"eval_depth": "eval_top_n"}, where="TrainConfig")
        return values

    @field_validator("ranks")
    @classmethod
    def _rank_window(cls, ranks: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= ranks[0] <= ranks[1]:
            raise ValueError(f"ranks must be (first, last) with 1 <= first <= last, got {ranks}")
        return ranks

    @model_validator(mode="after")
    def _teacher_for_marginmse(self) -> TrainConfig:
        if self.loss == "marginmse" and not self.teacher:
            raise ValueError("loss 'marginmse' distils a teacher: give teacher=[SPEC, ...]")
        if self.teacher and self.loss != "marginmse":
            raise ValueError(
                f"teacher is only used by loss 'marginmse', not {self.loss!r}: drop the teacher "
                "or train with loss='marginmse'"
            )
        return self
