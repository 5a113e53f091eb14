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
from rerankkit._optional import MissingExtraError
from rerankkit._result import RerankResult, result_metadata

if TYPE_CHECKING:
    from rerankkit._llm_protocol import AsyncCompletionLLM, Completion, CompletionLLM, FunctionLLM
    from rerankkit.cache import CachedReranker, ScoreCache
    from rerankkit.calibration import score_distribution
    from rerankkit.cascade import CascadeReranker
    from rerankkit.causal_lm import CausalLMReranker
    from rerankkit.cross_encoder import DEFAULT_CROSS_ENCODER, CrossEncoderReranker
    from rerankkit.embedding import EmbeddingReranker
    from rerankkit.fusion import FusionReranker, reciprocal_rank_fusion
    from rerankkit.llm_factory import llm_reranker
    from rerankkit.llm_listwise import LLMListwiseReranker
    from rerankkit.llm_pointwise import LLMPointwiseReranker
    from rerankkit.reorder import lost_in_the_middle

# Public name -> module that defines it. Resolved on first access (PEP 562) so that
# `import rerankkit` never imports a backend's dependencies.
_LAZY: dict[str, str] = {
    "CrossEncoderReranker": "rerankkit.cross_encoder",
    "DEFAULT_CROSS_ENCODER": "rerankkit.cross_encoder",
    "EmbeddingReranker": "rerankkit.embedding",
    "CachedReranker": "rerankkit.cache",
    "CascadeReranker": "rerankkit.cascade",
    "FusionReranker": "rerankkit.fusion",
    "ScoreCache": "rerankkit.cache",
    "lost_in_the_middle": "rerankkit.reorder",
    "reciprocal_rank_fusion": "rerankkit.fusion",
    "score_distribution": "rerankkit.calibration",
    "AsyncCompletionLLM": "rerankkit._llm_protocol",
    "CausalLMReranker": "rerankkit.causal_lm",
    "Completion": "rerankkit._llm_protocol",
    "CompletionLLM": "rerankkit._llm_protocol",
    "FunctionLLM": "rerankkit._llm_protocol",
    "LLMListwiseReranker": "rerankkit.llm_listwise",
    "LLMPointwiseReranker": "rerankkit.llm_pointwise",
    "llm_reranker": "rerankkit.llm_factory",
}

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "AsyncCompletionLLM",
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
    "MissingExtraError",
    "RerankResult",
    "Reranker",
    "ScoreCache",
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
