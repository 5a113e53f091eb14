"""``train``: fine-tune a cross-encoder with sentence-transformers' ``CrossEncoderTrainer``.

The steps (each its own module): read the training queries (:mod:`~rerankkit.train._data`) ->
mine hard negatives with the first stage (:mod:`~rerankkit.train._mining`) -> score them with a
teacher for distillation (:mod:`~rerankkit.train._teacher`) -> rows for the chosen loss
(:mod:`~rerankkit.train._examples`, :mod:`~rerankkit.train._losses`) -> train (this module: the
trainer's own loop, progress bars, checkpoints and ``resume_from_checkpoint``) -> save the
model with its card (:mod:`~rerankkit.train._card`) -> evaluate before and after on the test
split (:mod:`~rerankkit.train._evaluation`).

The output folder is a plain sentence-transformers ``CrossEncoder`` folder (``config.json``,
``model.safetensors``, tokenizer, ``config_sentence_transformers.json``) plus ``README.md``
(the model card), ``training.json`` (everything the card says, as data) and ``checkpoints/``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rerankkit._optional import require
from rerankkit._specs import check_spec, redact_spec
from rerankkit.backends._hf import resolve_dtype
from rerankkit.backends._speed import cpu_flags, cpu_has_fast_bf16
from rerankkit.errors import DatasetError, TrainingError
from rerankkit.eval._datasets import missing_beir_files
from rerankkit.eval._runs import candidates, first_stage_run
from rerankkit.train._card import evaluation_table, model_card
from rerankkit.train._config import TrainConfig
from rerankkit.train._data import (
    TrainQuery,
    count_pairs,
    drop_positive_copies,
    load_training_data,
)
from rerankkit.train._evaluation import evaluate, evaluation_settings
from rerankkit.train._examples import rows_for
from rerankkit.train._losses import build_loss
from rerankkit.train._mining import add_negatives, mine_negatives, positive_copies
from rerankkit.train._model import EXTRA, load_student, require_train_extra, starting_config
from rerankkit.train._teacher import build_teacher, teacher_scores

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
_CHECKPOINT = re.compile(r"checkpoint-\d+")


def saved_checkpoints(output: Path) -> list[Path]:
    """The ``checkpoint-N`` folders in ``output/checkpoints`` (if any), oldest step first."""
    found = (output / CHECKPOINTS).glob("checkpoint-*")
    ours = [p for p in found if p.is_dir() and _CHECKPOINT.fullmatch(p.name)]
    return sorted(ours, key=lambda p: int(p.name.rsplit("-", 1)[1]))


def _written_at(checkpoint: Path) -> float:
    state = checkpoint / "trainer_state.json"  # the trainer writes it last
    return (state if state.is_file() else checkpoint).stat().st_mtime


RUN_SETTINGS = "run.json"  # in checkpoints/: the settings the checkpoints were trained with
_MAY_CHANGE_ON_RESUME = frozenset(  # where the model goes, its evaluation, progress, saving
    {"output", "eval_data", "eval_split", "eval_top_n", "eval_dtype", "progress", "save_steps"}
)


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """The settings that decide what a run trains (rows, loss, schedule), as JSON values.

    Example:
        >>> settings = run_settings(TrainConfig(model="m", data="d", output="o"))
        >>> settings["loss"], settings["ranks"], "output" in settings
        ('bce', [10, 100], False)
    """
    return config.model_dump(mode="json", exclude=set(_MAY_CHANGE_ON_RESUME))


def changed_settings(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """The settings in which ``config`` differs from the run that wrote ``saved``, sorted.

    Example:
        >>> first = run_settings(TrainConfig(model="m", data="d", output="o"))
        >>> changed_settings(first, TrainConfig(model="m", data="d", output="o2", loss="margin"))
        ['loss']
    """
    now = run_settings(config)
    return sorted(k for k in now.keys() | saved.keys() if now.get(k) != saved.get(k))


def check_start(config: TrainConfig, *, resume: bool | str = False) -> list[Path]:
    """Refuse, before any mining, teacher scoring or training, what would fail or do harm later.

    Reads files only. ``output`` must be a new or empty folder, or one ``rerankkit train``
    wrote (it holds ``training.json`` or ``checkpoints/``), and not the starting model's own
    folder (training would overwrite the model it starts from, and "before" would score the
    trained one). ``resume`` needs a checkpoint to continue from. A fresh run (no ``resume``)
    into a folder whose checkpoints belong to an unfinished run is refused (resume it, or
    remove them), so two runs' checkpoints never mix; those of a finished run (older than its
    ``training.json``) are returned, for :func:`train` to delete before it starts. The teacher
    specs are parsed and their options checked, and the evaluation data must be a BEIR
    folder with the ``eval_split`` qrels.

    Returns:
        A finished earlier run's checkpoint folders that a fresh run replaces.

    Raises:
        TrainingError: Naming the argument (``output``, ``resume``, ``teacher``,
            ``eval_data``, ``eval_split``, ``eval_dtype``, ``bf16``) and what to do instead.
    """
    output = Path(config.output).expanduser()
    if output.exists() and not output.is_dir():
        raise TrainingError(f"output {str(output)!r} exists and is not a folder")
    blocking = next((p for p in output.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # the trainer failed on it with a traceback, after mining
        raise TrainingError(f"output {str(output)!r} is inside {str(blocking)!r}, which is a file")
    model = Path(config.model).expanduser()
    if output.is_dir() and model.is_dir() and output.resolve() == model.resolve():
        raise TrainingError(
            f"output {str(output)!r} is the starting model's folder: training would overwrite "
            "the model it starts from; choose another output folder"
        )
    ours = (output / "training.json").is_file() or (output / CHECKPOINTS).is_dir()
    if output.is_dir() and not ours and any(output.iterdir()):
        raise TrainingError(
            f"output {str(output)!r} is a folder with files that rerankkit train did not write "
            "(no training.json or checkpoints/); its model files and README.md would be "
            "overwritten: choose a new or empty folder"
        )
    saved = saved_checkpoints(output)
    if resume is True and not saved:
        raise TrainingError(
            f"resume: no checkpoint in {str(output / CHECKPOINTS)!r} to continue from "
            "(start without resume, or give a checkpoint folder)"
        )
    if isinstance(resume, str):
        if not Path(resume).expanduser().is_dir():
            raise TrainingError(f"resume: checkpoint folder not found: {resume!r}")
        if not (Path(resume).expanduser() / "trainer_state.json").is_file():
            raise TrainingError(
                f"resume: {resume!r} is not a training checkpoint (no trainer_state.json); give "
                f"a checkpoint-N folder from {str(output / CHECKPOINTS)!r}"
            )
    recorded = output / CHECKPOINTS / RUN_SETTINGS
    if resume and recorded.is_file():
        changed = changed_settings(json.loads(recorded.read_text(encoding="utf-8")), config)
        if changed:
            raise TrainingError(
                f"resume: the checkpoints in {str(output / CHECKPOINTS)!r} were trained with "
                f"other {', '.join(changed)}; resume with the same settings (see "
                f"{RUN_SETTINGS} there), or start a new run in another output folder"
            )
    if not resume and saved:
        record = output / "training.json"
        finished = record.is_file() and record.stat().st_mtime >= max(map(_written_at, saved))
        if not finished:
            raise TrainingError(
                f"output {str(output)!r} holds checkpoints of an unfinished run (newest: "
                f"{saved[-1].name}): continue it with resume (rerankkit train --resume), or "
                f"delete {str(output / CHECKPOINTS)!r} or choose another output to start anew"
            )
    for spec in config.teacher:
        try:
            check_spec(spec)
        except ValueError as error:
            raise TrainingError(f"teacher: {error}") from None
    settings = evaluation_settings(config)  # refuses an eval_data that is not a folder
    if settings is not None:
        same_data = Path(settings.data).resolve() == Path(config.data).resolve()
        if same_data and settings.split == config.split:
            raise TrainingError(
                f"eval_split {settings.split!r} is the training split of {config.data!r}: "
                "before/after would be measured on the queries the model is trained on; "
                "evaluate on another split or data (eval_split, eval_data), or turn the "
                "evaluation off (eval_split=None, rerankkit train --no-eval)"
            )
        missing = missing_beir_files(settings.data, settings.split)
        if missing:
            raise TrainingError(
                f"eval_split {settings.split!r}: the before/after evaluation needs "
                f"{', '.join(missing)}; choose another eval_split or eval_data, or turn "
                "the evaluation off (eval_split=None, rerankkit train --no-eval)"
            )
        try:
            resolve_dtype(settings.dtype, "cpu", bf16=False)
        except ValueError as error:
            raise TrainingError(f"eval_dtype: {error}") from None
    if config.bf16:
        _device_bf16(config.bf16)  # forced bf16 on a device without it: refused now, not later
    return [] if resume else saved  # a fresh run replaces a finished run's checkpoints


@dataclass
class Prepared:
    """The training rows and how they were made (for the card)."""

    queries: list[TrainQuery]
    rows: dict[str, list[Any]]
    data: dict[str, Any]


def prepare(config: TrainConfig) -> Prepared:
    """Training queries with mined negatives and teacher scores, as rows for ``config.loss``.

    The first stage searches the training queries only (after ``max_queries`` sampling).

    Raises:
        DatasetError: The training data is missing or malformed.
        TrainingError: No rows to train on (e.g. a pairwise loss and no negatives).
    """
    queries, dataset = load_training_data(config.data, split=config.split)
    info: dict[str, Any] = {"source": str(config.data), "format": "beir" if dataset else "jsonl"}
    if dataset is not None:
        info["split"] = config.split
    if config.max_queries is not None and config.max_queries < len(queries):
        info["sampled_queries"] = {"of": len(queries), "seed": config.seed}
        queries = sample_queries(queries, config.max_queries, config.seed)
    mined_copies = 0
    if dataset is not None and config.negatives > 0:
        started = time.perf_counter()
        training_ids = {q.query_id for q in queries}  # not the sampled-out or positive-less ones
        searched = replace(
            dataset, qrels={qid: j for qid, j in dataset.qrels.items() if qid in training_ids}
        )
        run = first_stage_run(
            searched, config.first_stage, config.ranks[1], bm25_language=config.bm25_language
        )
        # Unjudged copies of a positive are skipped like positives (the next document fills
        # the window); judged-0 copies are dropped below with every other negative source.
        copy_ids = positive_copies(run, queries, dataset.corpus, dataset.qrels)
        window = candidates(run, config.ranks[1])
        mined_copies = sum(
            len(ids & set(window.get(qid, [])[config.ranks[0] - 1 :]))
            for qid, ids in copy_ids.items()
        )
        skipped = {qid: dict(judged) for qid, judged in dataset.qrels.items()}
        for qid, ids in copy_ids.items():
            skipped.setdefault(qid, {}).update(dict.fromkeys(ids, 1))
        mined = mine_negatives(
            run,
            skipped,
            ranks=config.ranks,
            count=config.negatives,
            sampling=config.sampling,
            seed=config.seed,
        )
        queries = add_negatives(queries, mined, dataset.corpus)
        info["mining"] = {
            "first_stage": config.first_stage,
            "ranks": list(config.ranks),
            "per_query": config.negatives,
            "sampling": config.sampling,
            "seconds": round(time.perf_counter() - started, 1),
        }
        logger.info("mined negatives for %d queries", len(mined))
    queries, copies = drop_positive_copies(queries)
    copies += mined_copies
    if copies:
        logger.warning(
            "skipped %d negatives whose text equals one of their query's positives (a copy of "
            "a relevant document under another corpus id, mined or judged 0): training on them "
            "would teach the model that the passage is both relevant and not",
            copies,
        )
    info["counts"] = {**count_pairs(queries), "negatives_equal_to_a_positive_skipped": copies}
    check_trainable(config, queries, beir=dataset is not None)
    teacher: list[list[float]] = []
    if config.teacher:  # TrainConfig allows one with loss marginmse only
        started = time.perf_counter()
        teacher = teacher_scores(build_teacher(config.teacher), queries)
        info["teacher"] = {
            "specs": [redact_spec(spec) for spec in config.teacher],  # never an api_key
            "fusion": "z-scored sum per query" if len(config.teacher) > 1 else None,
            "seconds": round(time.perf_counter() - started, 1),
        }
    rows = rows_for(config.loss, queries, teacher=teacher)  # check_trainable: at least one
    info["rows"] = len(rows["query"])
    return Prepared(queries, rows, info)


def check_trainable(config: TrainConfig, queries: Sequence[TrainQuery], *, beir: bool) -> None:
    """Refuse training queries that give ``config.loss`` no rows, saying why (before a teacher
    scores anything).

    Raises:
        DatasetError: No training query (a BEIR split whose positives are all missing from the
            corpus or graded 0).
        TrainingError: A pairwise or listwise loss and no query has a negative.

    Example:
        >>> config = TrainConfig(model="m", data="t.jsonl", output="o", loss="margin")
        >>> check_trainable(config, [TrainQuery("q", ("p",))], beir=False)
        Traceback (most recent call last):
        rerankkit.errors.TrainingError: loss 'margin' compares positives with negatives, but t.jsonl has none (JSONL data is never mined): add triples {"query", "positive", "negative"} or pairs with "label": 0, or use loss 'bce'
    """  # noqa: E501 (the real message)
    if not queries:  # BEIR only: a JSONL query without a relevant passage is refused on reading
        raise DatasetError(
            f"{config.data}: no training query with a relevant document in the corpus "
            f"(qrels/{config.split}.tsv)"
        )
    if config.loss == "bce" or any(q.negatives for q in queries):
        return
    start = f"loss {config.loss!r} compares positives with negatives, but "
    if beir:
        raise TrainingError(
            start + f"no training query got one: mine some (negatives > 0, now "
            f"{config.negatives}) from a rank window holding unjudged documents (ranks "
            f"{config.ranks[0]}-{config.ranks[1]})"
        )
    raise TrainingError(
        start + f"{config.data} has none (JSONL data is never mined): add triples "
        '{"query", "positive", "negative"} or pairs with "label": 0, or use loss \'bce\''
    )


def sample_queries(queries: Sequence[TrainQuery], count: int, seed: int) -> list[TrainQuery]:
    """A seeded sample of ``count`` queries, in their original order.

    Example:
        >>> qs = [TrainQuery(str(i), ("p",), query_id=str(i)) for i in range(5)]
        >>> [q.query_id for q in sample_queries(qs, 2, seed=1)]
        ['0', '1']
    """
    chosen = set(random.Random(seed).sample(range(len(queries)), min(count, len(queries))))
    return [q for position, q in enumerate(queries) if position in chosen]


def use_bf16(requested: bool | None, *, cuda: bool, cuda_bf16: bool, flags: frozenset[str]) -> bool:
    """Whether to train in bf16 mixed precision.

    ``None`` decides by capability: a CUDA device that supports bf16, or (no CUDA) a CPU whose
    flags say it multiplies bf16 natively (AVX512-BF16/AMX); elsewhere bf16 is emulated and
    slower than fp32. ``True`` on hardware without it raises rather than crawl.

    Example:
        >>> use_bf16(None, cuda=False, cuda_bf16=False, flags=frozenset({"avx512_bf16"}))
        True
        >>> use_bf16(None, cuda=False, cuda_bf16=False, flags=frozenset({"avx2"}))
        False
    """
    capable = cuda_bf16 if cuda else cpu_has_fast_bf16(flags)
    if requested is None:
        return capable
    if requested and not capable:
        raise TrainingError("bf16=True but this device has no native bf16 (use bf16=None or False)")
    return bool(requested)


def _device_bf16(requested: bool | None) -> bool:
    import torch

    cuda = torch.cuda.is_available()
    cuda_bf16 = cuda and torch.cuda.is_bf16_supported()
    return use_bf16(requested, cuda=cuda, cuda_bf16=cuda_bf16, flags=cpu_flags())


def fit(
    config: TrainConfig,
    rows: dict[str, list[Any]],
    *,
    resume: bool | str = False,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train on ``rows`` and save the model to ``config.output``; returns the run's facts.

    ``resume``: ``True`` continues from the newest checkpoint in ``output/checkpoints``, a
    path from that checkpoint (the trainer's ``resume_from_checkpoint``: weights, optimizer,
    scheduler, RNG and data position are restored).

    Raises:
        TrainingError: See :func:`rerankkit.train._model.load_student` and :func:`use_bf16`.
    """
    datasets = require("datasets", EXTRA)
    require("accelerate", EXTRA)
    from sentence_transformers.cross_encoder import (
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from transformers import set_seed

    set_seed(config.seed)  # the new head, if any, is initialised under the seed
    model = load_student(config.model, new_head=config.new_head, max_length=config.max_length)
    train_rows = datasets.Dataset.from_dict(rows)  # the loss's columns, in its order
    bf16 = _device_bf16(config.bf16)
    import torch

    progress = sys.stderr.isatty() if config.progress is None else config.progress
    output = Path(config.output)
    args = CrossEncoderTrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio (transformers 5)
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=max(1, min(10, config.save_steps)),
        report_to="none",
        disable_tqdm=not progress,
        dataloader_drop_last=False,
    )
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        loss=build_loss(config.loss, model, margin=config.margin),
        callbacks=list(callbacks),
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume or None)
    seconds = time.perf_counter() - started
    model.save_pretrained(str(output))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if not math.isfinite(result.training_loss):
        logger.warning(
            "training loss is %s: the run diverged (lower the learning rate)", result.training_loss
        )
    return {
        "steps": int(trainer.state.global_step),
        "epochs": round(float(trainer.state.epoch or 0.0), 3),
        "train_loss": float(result.training_loss),
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "seconds": round(seconds, 1),
        "bf16": bf16,
        "resumed": bool(resume),
    }


@dataclass
class TrainResult:
    """What :func:`train` did: the output folder, the training facts and the evaluation."""

    output: Path
    record: dict[str, Any]
    report: Any = None  # EvalReport, when evaluated

    def summary(self) -> str:
        """The model card's evaluation table, or a line saying there was none."""
        return evaluation_table(self.record.get("evaluation"))


def training_record(
    config: TrainConfig,
    *,
    command: str | None,
    data: dict[str, Any],
    training: dict[str, Any],
) -> dict[str, Any]:
    """What ``training.json`` and the card record: the config (teacher specs with any
    ``api_key`` shown as ``***``), the command line, the data and the training facts.

    Example:
        >>> config = TrainConfig(model="m", data="d", output="o", loss="marginmse",
        ...                      teacher=["cohere:rerank-v3.5?api_key=sk-1"])
        >>> training_record(config, command=None, data={}, training={})["config"]["teacher"]
        ['cohere:rerank-v3.5?api_key=***']
    """
    settings = config.model_dump(mode="json", exclude={"progress"})
    settings["teacher"] = [redact_spec(spec) for spec in config.teacher]
    return {"config": settings, "command": command, "data": data, "training": training}


def write_record(output: Path, record: dict[str, Any]) -> None:
    """Write ``training.json`` and the model card ``README.md`` into ``output`` (standard
    JSON: a non-finite number, e.g. the loss of a diverged run, is written as ``null``)."""
    output.mkdir(parents=True, exist_ok=True)
    record = json.loads(json.dumps(record), parse_constant=lambda nan_or_inf: None)
    text = json.dumps(record, indent=2, allow_nan=False)
    (output / "training.json").write_text(text + "\n", encoding="utf-8")
    (output / "README.md").write_text(model_card(record), encoding="utf-8")


def train(
    config: TrainConfig,
    *,
    resume: bool | str = False,
    before: Any = None,
    command: str | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Prepare the rows, train, save, evaluate before/after, and write the card.

    Args:
        config: The run (see :class:`TrainConfig`).
        resume: Continue from a checkpoint (see :func:`fit`).
        before: The starting model's reranked test run ``(run, timing)``, if already scored.
        command: The command line, recorded in the card (as given: redact secrets first).
        callbacks: Extra ``transformers.TrainerCallback`` objects.

    Returns:
        The output folder, the record written to ``training.json`` and the evaluation report.

    Raises:
        DatasetError, ModelLoadError, TrainingError: See :func:`check_start`, :func:`prepare`,
            :func:`fit`; the output folder, ``resume``, the teacher specs, the evaluation
            data and the starting model's config are checked before anything is mined.
    """
    require_train_extra()  # the whole extra, before anything is written or mined
    stale = check_start(config, resume=resume)
    starting_config(config.model, new_head=config.new_head)
    prepared = prepare(config)
    for checkpoint in stale:  # a finished earlier run's, replaced by this one's
        logger.info("removing %s (a finished earlier run's checkpoint)", checkpoint)
        shutil.rmtree(checkpoint)
    if not resume:  # what a later resume must match
        recorded = Path(config.output) / CHECKPOINTS / RUN_SETTINGS
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_text(json.dumps(run_settings(config), indent=2) + "\n", encoding="utf-8")
    facts = fit(config, prepared.rows, resume=resume, callbacks=callbacks)
    record = training_record(config, command=command, data=prepared.data, training=facts)
    output = Path(config.output)
    write_record(output, record)
    report, evaluation = evaluate(config, before=before)
    if evaluation is not None:
        record["evaluation"] = evaluation
        write_record(output, record)
    return TrainResult(output, record, report)
