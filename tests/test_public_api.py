"""Pinned public API of the three packages: a change here is a change to the contract."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

PUBLIC = {
    "rerankkit": [
        "AsyncCompletionLLM",
        "BatchingReranker",
        "CachedReranker",
        "CalibratedReranker",
        "CalibrationError",
        "CascadeReranker",
        "CausalLMReranker",
        "Completion",
        "CompletionLLM",
        "ContextPruner",
        "CrossEncoderReranker",
        "DEFAULT_CROSS_ENCODER",
        "DatasetError",
        "EmbeddingReranker",
        "FunctionLLM",
        "FusionReranker",
        "InvalidTextError",
        "LLMCallError",
        "LLMListwiseReranker",
        "LLMPointwiseReranker",
        "LateInteractionReranker",
        "MissingExtraError",
        "ModelLoadError",
        "PrunedDocument",
        "RemoteServiceError",
        "RerankResult",
        "Reranker",
        "RerankkitError",
        "RetryPolicy",
        "ScoreCache",
        "SpecError",
        "TokenEmbeddingStore",
        "TrainingError",
        "TransientLLMError",
        "build_reranker",
        "llm_reranker",
        "lost_in_the_middle",
        "reciprocal_rank_fusion",
        "reranker_spec",
        "result_metadata",
        "score_distribution",
    ],
    "rerankkit.adapting": [
        "FusionFields",
        "KeptItem",
        "PointwiseRerankerField",
        "ReorderMode",
        "RerankOutcome",
        "RerankSettings",
        "RerankerField",
        "StageOptions",
        "UnrankedField",
        "arerank_items",
        "check_items",
        "fuse_items",
        "fusion_fields",
        "is_blank",
        "is_installed",
        "lazy_exports",
        "require_extra",
        "rerank_items",
        "reranker_name",
        "score_pairs",
    ],
    "rerankkit.context": [
        "ContextPruner",
        "PrunedDocument",
        "approximate_tokens",
        "split_sentences",
    ],
    "rerankkit.errors": [
        "CalibrationError",
        "DatasetError",
        "InvalidTextError",
        "LLMCallError",
        "MissingExtraError",
        "ModelLoadError",
        "RemoteServiceError",
        "RerankkitError",
        "SpecError",
        "TrainingError",
        "TransientLLMError",
    ],
    "rerankkit.eval": [
        "BM25Index",
        "Calibration",
        "Dataset",
        "EvalReport",
        "ScoreDistribution",
        "SystemResult",
        "Timing",
        "bm25_search",
        "brier_score",
        "candidates",
        "check_run",
        "dense_search",
        "evaluate",
        "evaluate_runs",
        "expected_calibration_error",
        "first_stage_run",
        "fit_calibration",
        "load_beir",
        "load_trec_run",
        "per_query_metrics",
        "ranking_metrics",
        "rerank_run",
        "score_distribution",
        "summarize_scores",
        "threshold_table",
    ],
    "rerankkit.remote": [
        "CohereReranker",
        "CohereV1Reranker",
        "InfinityReranker",
        "JinaReranker",
        "MixedbreadReranker",
        "RemoteReranker",
        "TEIReranker",
        "VLLMReranker",
        "VoyageReranker",
    ],
    "rerankkit.distributed": ["rerank_dataset", "rerank_deployment"],
    "rerankkit.llm": [],
    "rerankkit.backends": [],  # the backends are exported from rerankkit
    "rerankkit.compose": [],  # so are fusion, cascade, cache, batching, reordering
    "rerankkit.cli": ["main"],
    "rerankkit.train": ["TrainConfig", "TrainResult", "train"],
    "rerankkit.serve": ["ServeSettings", "create_app", "serve_in_thread"],
    "rerankkit.testing": [
        "ConcurrencyRecordingLLM",
        "FixedScoreReranker",
        "FunctionReranker",
        "KeywordReranker",
        "OracleLLM",
        "ScriptedLLM",
    ],
    "langchain_rerankkit": [
        "RerankKitCompressor",
        "RerankKitCrossEncoder",
        "RerankKitFusionRetriever",
        "as_rerankkit_llm",
        "hybrid_compressor",
        "hybrid_retriever",
    ],
    "llamaindex_rerankkit": [
        "RerankKitFusionRetriever",
        "RerankKitPostprocessor",
        "as_rerankkit_llm",
        "hybrid_postprocessor",
        "hybrid_query_engine",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_pinned_and_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_every_package_and_public_module_is_pinned() -> None:
    """Every importable name that is not ``_private``: the packages and the public modules."""
    root = Path(__file__).resolve().parent.parent
    public = set()
    for package in ("rerankkit", "langchain_rerankkit", "llamaindex_rerankkit"):
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if not any(part.startswith("_") for part in parts):
                public.add(".".join(parts))
    assert public == set(PUBLIC)


def test_public_names_are_not_private_modules_helpers() -> None:
    """What a public ``__all__`` lists is public: no ``_name``, no module object."""
    for module_name, names in PUBLIC.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert not name.startswith("_"), (module_name, name)
            assert not inspect.ismodule(getattr(module, name)), (module_name, name)


def test_every_public_error_is_importable_from_rerankkit() -> None:
    import rerankkit
    import rerankkit.errors

    for name in rerankkit.errors.__all__:
        assert getattr(rerankkit, name) is getattr(rerankkit.errors, name), name
        assert issubclass(getattr(rerankkit, name), rerankkit.RerankkitError), name
    from rerankkit._specs import build_reranker, reranker_spec

    assert (rerankkit.build_reranker, rerankkit.reranker_spec) == (build_reranker, reranker_spec)


def test_design_names_exist() -> None:
    import rerankkit

    assert rerankkit.DEFAULT_CROSS_ENCODER == "cross-encoder/ms-marco-MiniLM-L6-v2"
    from langchain_core.documents import BaseDocumentCompressor
    from llama_index.core.postprocessor.types import BaseNodePostprocessor

    from langchain_rerankkit import RerankKitCompressor
    from llamaindex_rerankkit import RerankKitPostprocessor

    assert issubclass(RerankKitCompressor, BaseDocumentCompressor)
    from langchain_community.cross_encoders import BaseCrossEncoder

    from langchain_rerankkit import RerankKitCrossEncoder

    assert issubclass(RerankKitCrossEncoder, BaseCrossEncoder)
    assert issubclass(RerankKitPostprocessor, BaseNodePostprocessor)
    for name in (
        "CrossEncoderReranker",
        "EmbeddingReranker",
        "LLMPointwiseReranker",
        "LLMListwiseReranker",
        "CausalLMReranker",
        "FusionReranker",
        "CascadeReranker",
        "LateInteractionReranker",
        "CalibratedReranker",
    ):
        assert issubclass(getattr(rerankkit, name), rerankkit.Reranker), name
