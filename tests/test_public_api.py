"""Pinned public API of the three packages: a change here is a change to the contract."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "rerankkit": [
        "AsyncCompletionLLM",
        "BatchingReranker",
        "CachedReranker",
        "CascadeReranker",
        "CausalLMReranker",
        "Completion",
        "CompletionLLM",
        "CrossEncoderReranker",
        "DEFAULT_CROSS_ENCODER",
        "DatasetError",
        "EmbeddingReranker",
        "FunctionLLM",
        "FusionReranker",
        "LLMCallError",
        "LLMListwiseReranker",
        "LLMPointwiseReranker",
        "LateInteractionReranker",
        "MissingExtraError",
        "ModelLoadError",
        "RemoteServiceError",
        "RerankResult",
        "Reranker",
        "RerankkitError",
        "ScoreCache",
        "TokenEmbeddingStore",
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
        "is_installed",
        "lazy_exports",
        "require_extra",
        "rerank_items",
        "reranker_name",
        "score_pairs",
    ],
    "rerankkit.errors": [
        "DatasetError",
        "LLMCallError",
        "MissingExtraError",
        "ModelLoadError",
        "RemoteServiceError",
        "RerankkitError",
        "TransientLLMError",
    ],
    "rerankkit.eval": [
        "BM25Index",
        "Dataset",
        "EvalReport",
        "ScoreDistribution",
        "SystemResult",
        "Timing",
        "bm25_search",
        "candidates",
        "check_run",
        "dense_search",
        "evaluate",
        "evaluate_runs",
        "first_stage_run",
        "load_beir",
        "load_trec_run",
        "per_query_metrics",
        "ranking_metrics",
        "rerank_run",
        "score_distribution",
        "summarize_scores",
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
    ):
        assert issubclass(getattr(rerankkit, name), rerankkit.Reranker), name
