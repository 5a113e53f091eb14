"""rerankkit: reranking as a one-line upgrade for retrieval-augmented generation.

Importing this package is cheap: backends load torch, transformers or an LLM client only
when one is constructed.

Example::

    from rerankkit import CrossEncoderReranker

    reranker = CrossEncoderReranker()  # cross-encoder/ms-marco-MiniLM-L6-v2
    reranker.rerank("capital of France", ["Berlin is ...", "Paris is ..."], top_n=1)
    # [RerankResult(index=1, score=0.98)]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rerankkit._base import Reranker
from rerankkit._result import RerankResult, result_metadata
from rerankkit.errors import MissingExtraError, RerankkitError

if TYPE_CHECKING:
    from rerankkit.backends.causal_lm import CausalLMReranker
    from rerankkit.backends.cross_encoder import DEFAULT_CROSS_ENCODER, CrossEncoderReranker
    from rerankkit.backends.embedding import EmbeddingReranker
    from rerankkit.backends.late_interaction import LateInteractionReranker
    from rerankkit.backends.token_store import TokenEmbeddingStore
    from rerankkit.compose.batching import BatchingReranker
    from rerankkit.compose.cache import CachedReranker, ScoreCache
    from rerankkit.compose.cascade import CascadeReranker
    from rerankkit.compose.fusion import FusionReranker, reciprocal_rank_fusion
    from rerankkit.compose.reorder import lost_in_the_middle
    from rerankkit.eval.calibration import score_distribution
    from rerankkit.llm.factory import llm_reranker
    from rerankkit.llm.listwise import LLMListwiseReranker
    from rerankkit.llm.pointwise import LLMPointwiseReranker
    from rerankkit.llm.protocol import AsyncCompletionLLM, Completion, CompletionLLM, FunctionLLM

# Public name -> module that defines it. Resolved on first access (PEP 562) so that
# `import rerankkit` never imports a backend's dependencies.
_LAZY: dict[str, str] = {
    "CrossEncoderReranker": "rerankkit.backends.cross_encoder",
    "DEFAULT_CROSS_ENCODER": "rerankkit.backends.cross_encoder",
    "EmbeddingReranker": "rerankkit.backends.embedding",
    "LateInteractionReranker": "rerankkit.backends.late_interaction",
    "TokenEmbeddingStore": "rerankkit.backends.token_store",
    "BatchingReranker": "rerankkit.compose.batching",
    "CachedReranker": "rerankkit.compose.cache",
    "CascadeReranker": "rerankkit.compose.cascade",
    "FusionReranker": "rerankkit.compose.fusion",
    "ScoreCache": "rerankkit.compose.cache",
    "lost_in_the_middle": "rerankkit.compose.reorder",
    "reciprocal_rank_fusion": "rerankkit.compose.fusion",
    "score_distribution": "rerankkit.eval.calibration",
    "AsyncCompletionLLM": "rerankkit.llm.protocol",
    "CausalLMReranker": "rerankkit.backends.causal_lm",
    "Completion": "rerankkit.llm.protocol",
    "CompletionLLM": "rerankkit.llm.protocol",
    "FunctionLLM": "rerankkit.llm.protocol",
    "LLMListwiseReranker": "rerankkit.llm.listwise",
    "LLMPointwiseReranker": "rerankkit.llm.pointwise",
    "llm_reranker": "rerankkit.llm.factory",
}

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "AsyncCompletionLLM",
    "BatchingReranker",
    "CachedReranker",
    "CascadeReranker",
    "CausalLMReranker",
    "Completion",
    "CompletionLLM",
    "CrossEncoderReranker",
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
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rerankkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
