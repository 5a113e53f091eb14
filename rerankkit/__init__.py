"""rerankkit: reranking as a one-line upgrade for retrieval-augmented generation.

Importing this package is cheap: backends load torch, transformers or an LLM client only
when one is constructed.

Example::

    from rerankkit import CrossEncoderReranker

    reranker = CrossEncoderReranker()  # cross-encoder/ms-marco-MiniLM-L6-v2
    reranker.rerank("capital of France", ["Berlin is ...", "Paris is ..."], top_n=1)
    # [RerankResult(index=1, score=0.98)]

    reranker = build_reranker("cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2?batch_size=16")
    reranker_spec(reranker)  # the spec string again, as configuration files store it

Every error rerankkit raises on purpose is a :class:`RerankkitError` (see
:mod:`rerankkit.errors`), importable from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rerankkit._base import Reranker
from rerankkit._optional import lazy_exports
from rerankkit._result import RerankResult, result_metadata
from rerankkit.errors import (
    CalibrationError,
    DatasetError,
    InvalidTextError,
    LLMCallError,
    MissingExtraError,
    ModelLoadError,
    RemoteServiceError,
    RerankkitError,
    SpecError,
    TrainingError,
    TransientLLMError,
)

if TYPE_CHECKING:  # what _LAZY loads, for type checkers (``X as X``: an explicit re-export)
    from rerankkit._calibrated import CalibratedReranker as CalibratedReranker
    from rerankkit._retry import RetryPolicy as RetryPolicy
    from rerankkit._specs import build_reranker as build_reranker
    from rerankkit._specs import reranker_spec as reranker_spec
    from rerankkit.backends._causal_lm import CausalLMReranker as CausalLMReranker
    from rerankkit.backends._cross_encoder import DEFAULT_CROSS_ENCODER as DEFAULT_CROSS_ENCODER
    from rerankkit.backends._cross_encoder import CrossEncoderReranker as CrossEncoderReranker
    from rerankkit.backends._embedding import EmbeddingReranker as EmbeddingReranker
    from rerankkit.backends._late_interaction import (
        LateInteractionReranker as LateInteractionReranker,
    )
    from rerankkit.backends._token_store import TokenEmbeddingStore as TokenEmbeddingStore
    from rerankkit.compose._batching import BatchingReranker as BatchingReranker
    from rerankkit.compose._cache import CachedReranker as CachedReranker
    from rerankkit.compose._cache import ScoreCache as ScoreCache
    from rerankkit.compose._cascade import CascadeReranker as CascadeReranker
    from rerankkit.compose._fusion import FusionReranker as FusionReranker
    from rerankkit.compose._fusion import reciprocal_rank_fusion as reciprocal_rank_fusion
    from rerankkit.compose._reorder import lost_in_the_middle as lost_in_the_middle
    from rerankkit.context._pruner import ContextPruner as ContextPruner
    from rerankkit.context._pruner import PrunedDocument as PrunedDocument
    from rerankkit.eval._calibration import score_distribution as score_distribution
    from rerankkit.llm._factory import llm_reranker as llm_reranker
    from rerankkit.llm._listwise import LLMListwiseReranker as LLMListwiseReranker
    from rerankkit.llm._pointwise import LLMPointwiseReranker as LLMPointwiseReranker
    from rerankkit.llm._protocol import AsyncCompletionLLM as AsyncCompletionLLM
    from rerankkit.llm._protocol import Completion as Completion
    from rerankkit.llm._protocol import CompletionLLM as CompletionLLM
    from rerankkit.llm._protocol import FunctionLLM as FunctionLLM

# Public name -> module that defines it. Resolved on first access (PEP 562) so that
# `import rerankkit` never imports a backend's dependencies.
_LAZY: dict[str, str] = {
    "CalibratedReranker": "rerankkit._calibrated",
    "RetryPolicy": "rerankkit._retry",
    "build_reranker": "rerankkit._specs",
    "reranker_spec": "rerankkit._specs",
    "CrossEncoderReranker": "rerankkit.backends._cross_encoder",
    "DEFAULT_CROSS_ENCODER": "rerankkit.backends._cross_encoder",
    "EmbeddingReranker": "rerankkit.backends._embedding",
    "LateInteractionReranker": "rerankkit.backends._late_interaction",
    "TokenEmbeddingStore": "rerankkit.backends._token_store",
    "BatchingReranker": "rerankkit.compose._batching",
    "CachedReranker": "rerankkit.compose._cache",
    "CascadeReranker": "rerankkit.compose._cascade",
    "FusionReranker": "rerankkit.compose._fusion",
    "ScoreCache": "rerankkit.compose._cache",
    "lost_in_the_middle": "rerankkit.compose._reorder",
    "ContextPruner": "rerankkit.context._pruner",
    "PrunedDocument": "rerankkit.context._pruner",
    "reciprocal_rank_fusion": "rerankkit.compose._fusion",
    "score_distribution": "rerankkit.eval._calibration",
    "AsyncCompletionLLM": "rerankkit.llm._protocol",
    "CausalLMReranker": "rerankkit.backends._causal_lm",
    "Completion": "rerankkit.llm._protocol",
    "CompletionLLM": "rerankkit.llm._protocol",
    "FunctionLLM": "rerankkit.llm._protocol",
    "LLMListwiseReranker": "rerankkit.llm._listwise",
    "LLMPointwiseReranker": "rerankkit.llm._pointwise",
    "llm_reranker": "rerankkit.llm._factory",
}

__all__ = [
    "CalibrationError",
    "DatasetError",
    "InvalidTextError",
    "LLMCallError",
    "MissingExtraError",
    "ModelLoadError",
    "RemoteServiceError",
    "RerankResult",
    "Reranker",
    "RerankkitError",
    "SpecError",
    "TrainingError",
    "TransientLLMError",
    "result_metadata",
    *_LAZY,  # loaded on first use
]

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
