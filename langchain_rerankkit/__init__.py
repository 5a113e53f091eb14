"""LangChain adapter for rerankkit: rerank retrieved documents with any rerankkit backend.

Example:
    >>> from langchain_rerankkit import RerankKitCompressor
    >>> from rerankkit.testing import KeywordReranker
    >>> RerankKitCompressor(reranker=KeywordReranker(), top_n=2).top_n
    2

    In a retriever::

        from langchain_classic.retrievers import ContextualCompressionRetriever
        retriever = ContextualCompressionRetriever(
            base_compressor=RerankKitCompressor(reranker="cross-encoder/ms-marco-MiniLM-L6-v2"),
            base_retriever=base_retriever,
        )
"""

from langchain_rerankkit._llm import as_rerankkit_llm
from langchain_rerankkit.compressor import RerankKitCompressor
from langchain_rerankkit.hybrid import RerankKitFusionRetriever, hybrid_compressor, hybrid_retriever

__all__ = [
    "RerankKitCompressor",
    "RerankKitFusionRetriever",
    "as_rerankkit_llm",
    "hybrid_compressor",
    "hybrid_retriever",
]
