"""Before/after evaluation of a fine-tuned cross-encoder with rerankkit's own evaluator.

The same flow as ``rerankkit eval``: a first stage (BM25, dense or hybrid) over the test
split, each model reranking every judged query's top ``top_n`` candidates, metrics from
:func:`rerankkit.eval._metrics.evaluate_runs`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rerankkit.backends._cross_encoder import CrossEncoderReranker
from rerankkit.errors import TrainingError
from rerankkit.eval._datasets import Dataset, Run, load_beir
from rerankkit.eval._metrics import evaluate_runs
from rerankkit.eval._report import EvalReport
from rerankkit.eval._runs import Timing, first_stage_run, rerank_run
from rerankkit.train._config import TrainConfig


@dataclass(frozen=True)
class EvalSettings:
    """How before/after is measured.

    Attributes:
        data: BEIR folder of the test collection.
        split: Its qrels split (default ``"test"``).
        first_stage: ``"bm25"``, ``"dense"`` or ``"hybrid"``.
        top_n: Candidates reranked per query (and the Recall cut-off).
        max_length: Tokens per pair when scoring (the training ``max_length``).
        dtype: Scoring dtype (``"auto"``: bf16 where the CPU/GPU has it natively, see
            :class:`rerankkit.CrossEncoderReranker`).
        bm25_language: BM25 analyser language (``None``: plain regex tokenizer).
    """

    data: str
    split: str = "test"
    first_stage: str = "bm25"
    top_n: int = 100
    max_length: int = 256
    dtype: str = "auto"
    bm25_language: str | None = "english"


def evaluation_settings(config: TrainConfig) -> EvalSettings | None:
    """The before/after settings, or ``None`` when there is nothing to evaluate on (no
    ``eval_split``, or no ``eval_data`` and ``data`` is JSONL).

    Raises:
        TrainingError: ``eval_data`` is not a folder.
    """
    data = config.eval_data if config.eval_data is not None else config.data
    if config.eval_split is None:
        return None
    if not Path(data).is_dir():
        if config.eval_data is None:
            return None
        raise TrainingError(f"eval_data must be a BEIR folder, got {data!r} (not a folder)")
    return EvalSettings(
        data=data,
        split=config.eval_split,
        first_stage=config.first_stage,
        top_n=config.eval_top_n,
        max_length=config.max_length,
        dtype=config.eval_dtype,
        bm25_language=config.bm25_language,
    )


def load_test(settings: EvalSettings) -> tuple[Dataset, Run]:
    """The test collection and its first-stage run."""
    dataset = load_beir(settings.data, split=settings.split)
    run = first_stage_run(
        dataset, settings.first_stage, settings.top_n, bm25_language=settings.bm25_language
    )
    return dataset, run


def evaluate(
    config: TrainConfig, *, before: tuple[Run, Timing | None] | None = None
) -> tuple[EvalReport | None, dict[str, Any] | None]:
    """Before/after on the test split: the first stage, the starting model (``before``) and the
    trained one (``after``) reranking its top ``eval_top_n``; ``(None, None)`` when there is
    nothing to evaluate on.

    Args:
        config: The run, trained (its ``output`` holds the model).
        before: The starting model's reranked run ``(run, timing)``, already scored (to share
            it across runs of one benchmark). Without it, the starting model is scored, unless
            it has a new head (which ranks at random: nothing to compare with).

    Returns:
        The report and its JSON-safe record for the card (:func:`evaluation_record`).
    """
    settings = evaluation_settings(config)
    if settings is None:
        return None, None
    dataset, first = load_test(settings)
    to_score = {"before": config.model, "after": config.output}
    if before is not None or config.new_head:  # given; or a new head, which ranks at random
        del to_score["before"]
    runs = {} if before is None else {"before": before}
    for name, model in to_score.items():
        reranker = CrossEncoderReranker(model, max_length=settings.max_length, dtype=settings.dtype)
        runs[name] = rerank_run(
            reranker, dataset, first, top_n=settings.top_n, progress=config.progress, desc=name
        )
    report = evaluate_runs(
        dataset,
        {settings.first_stage: first} | {name: run for name, (run, _) in runs.items()},
        first_stage=settings.first_stage,
        top_n=settings.top_n,
        timings={name: timing for name, (_, timing) in runs.items() if timing is not None},
    )
    return report, evaluation_record(report, settings)


def evaluation_record(report: EvalReport, settings: EvalSettings) -> dict[str, Any]:
    """The JSON-safe part of a before/after report the card shows."""
    return {
        "settings": asdict(settings),
        "queries": len(report.query_ids),
        "systems": [s.to_dict(per_query=False) for s in report.systems],
    }
