"""Before/after evaluation of a fine-tuned cross-encoder with rerankkit's own evaluator.

The same flow as ``rerankkit eval``: a first stage (BM25, dense or hybrid) over the test
split, each model reranking every judged query's top ``top_n`` candidates, metrics from
:func:`rerankkit.eval._metrics.evaluate_runs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rerankkit.backends._cross_encoder import CrossEncoderReranker
from rerankkit.eval._datasets import Dataset, load_beir
from rerankkit.eval._metrics import evaluate_runs
from rerankkit.eval._report import EvalReport
from rerankkit.eval._runs import Timing, first_stage_run, rerank_run


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


def load_test(settings: EvalSettings) -> tuple[Dataset, dict[str, dict[str, float]]]:
    """The test collection and its first-stage run."""
    dataset = load_beir(settings.data, split=settings.split)
    run = first_stage_run(
        dataset, settings.first_stage, settings.top_n, bm25_language=settings.bm25_language
    )
    return dataset, run


def score_model(
    model: str | Path,
    dataset: Dataset,
    run: Mapping[str, Mapping[str, float]],
    settings: EvalSettings,
    *,
    progress: bool | None = None,
    desc: str = "rerank",
) -> tuple[dict[str, dict[str, float]], Timing]:
    """Rerank ``run`` with the cross-encoder in ``model`` (its top ``settings.top_n``)."""
    reranker = CrossEncoderReranker(
        str(model), max_length=settings.max_length, dtype=settings.dtype
    )
    return rerank_run(reranker, dataset, run, top_n=settings.top_n, progress=progress, desc=desc)


def before_after(
    dataset: Dataset,
    first: Mapping[str, Mapping[str, float]],
    runs: Mapping[str, tuple[Mapping[str, Mapping[str, float]], Timing | None]],
    settings: EvalSettings,
) -> EvalReport:
    """One report: the first stage, then each named reranked run (e.g. ``before``, ``after``)."""
    all_runs = {settings.first_stage: first} | {name: run for name, (run, _) in runs.items()}
    timings = {name: timing for name, (_, timing) in runs.items() if timing is not None}
    return evaluate_runs(
        dataset, all_runs, first_stage=settings.first_stage, top_n=settings.top_n, timings=timings
    )
