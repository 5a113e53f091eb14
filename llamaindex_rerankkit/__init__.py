"""LlamaIndex adapter for rerankkit: rerank retrieved nodes with any rerankkit backend.

Example:
    >>> from llamaindex_rerankkit import RerankKitPostprocessor
    >>> from rerankkit.testing import KeywordReranker
    >>> RerankKitPostprocessor(reranker=KeywordReranker(), top_n=2).top_n
    2

    In a query engine::

        post = RerankKitPostprocessor(reranker="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3)
        engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[post])
"""

from llamaindex_rerankkit._llm import as_rerankkit_llm
from llamaindex_rerankkit.hybrid import (
    RerankKitFusionRetriever,
    hybrid_postprocessor,
    hybrid_query_engine,
)
from llamaindex_rerankkit.postprocessor import RerankKitPostprocessor

__all__ = [
    "RerankKitFusionRetriever",
    "RerankKitPostprocessor",
    "as_rerankkit_llm",
    "hybrid_postprocessor",
    "hybrid_query_engine",
]
