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
        "EmbeddingReranker",
        "FunctionLLM",
        "FusionReranker",
        "LLMListwiseReranker",
        "LLMPointwiseReranker",
        "LateInteractionReranker",
        "MissingExtraError",
        "RerankResult",
        "Reranker",
        "RerankkitError",
        "ScoreCache",
        "TokenEmbeddingStore",
        "llm_reranker",
        "lost_in_the_middle",
        "reciprocal_rank_fusion",
        "result_metadata",
        "score_distribution",
    ],
    "rerankkit.adapting": [
        "EmptyQueryField",
        "PointwiseRerankerField",
        "RerankerErrorField",
        "RerankerField",
        "RERANKER_ERROR_MODES",
        "RerankOutcome",
        "RerankerErrorMode",
        "arerank_or_fallback",
        "check_on_reranker_error",
        "error_reason",
        "rerank_or_fallback",
        "EMPTY_QUERY_MODES",
        "EmptyQueryMode",
        "FusionFields",
        "NOT_RERANKED",
        "REORDER_MODES",
        "UNRANKED_PAIR_SCORE",
        "ReorderMode",
        "RerankFields",
        "StageOptions",
        "arerank_items",
        "as_reranker",
        "check_int",
        "check_items",
        "check_on_empty_query",
        "check_pointwise",
        "check_reorder",
        "check_score_threshold",
        "check_top_n",
        "fields_from_llm",
        "fuse_items",
        "fusion_fields",
        "hybrid_fields",
        "is_installed",
        "lazy_exports",
        "llm_stage",
        "reorder_results",
        "require_extra",
        "rerank_fields",
        "rerank_items",
        "reranker_field_spec",
        "reranker_name",
        "score_pairs",
        "unranked_fallback",
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
