"""LangChain adapter for rerankkit: rerank retrieved documents with any rerankkit backend.

Needs ``langchain-core``; the hybrid helpers (``hybrid_retriever``, ``hybrid_compressor``,
``RerankKitFusionRetriever``) also need ``langchain-classic`` and load on first use, so
``RerankKitCompressor`` works without it. ``pip install "rerankkit[langchain]"`` gets both;
a missing one raises ``rerankkit.errors.MissingExtraError`` saying so. Without
``langchain-classic`` the hybrid names are left out of ``__all__`` and ``dir()`` (``import *``,
``help()`` and ``inspect`` work); using one raises that error with the install hint.

Example:
    >>> from langchain_rerankkit import RerankKitCompressor
    >>> from rerankkit.testing import KeywordReranker
    >>> RerankKitCompressor(reranker=KeywordReranker(), top_n=2).top_n
    2

    ``RerankKitCrossEncoder`` is LangChain's ``BaseCrossEncoder``, for the tutorial's
    ``CrossEncoderReranker(model=RerankKitCrossEncoder("..."), top_n=3)``.

    In a retriever::

        from langchain_classic.retrievers import ContextualCompressionRetriever
        retriever = ContextualCompressionRetriever(
            base_compressor=RerankKitCompressor(reranker="cross-encoder/ms-marco-MiniLM-L6-v2"),
            base_retriever=base_retriever,
        )
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rerankkit.adapting import is_installed, lazy_exports, require_extra

require_extra("langchain_core", "langchain")  # the install hint, not a bare ImportError

from langchain_rerankkit._compressor import RerankKitCompressor  # noqa: E402
from langchain_rerankkit._cross_encoder import RerankKitCrossEncoder  # noqa: E402
from langchain_rerankkit._llm import as_rerankkit_llm  # noqa: E402

if TYPE_CHECKING:
    from langchain_rerankkit._hybrid import (
        RerankKitFusionRetriever,
        hybrid_compressor,
        hybrid_retriever,
    )

__all__ = ["RerankKitCompressor", "RerankKitCrossEncoder", "as_rerankkit_llm"]
if is_installed("langchain_classic"):  # found, not imported: the hybrid helpers can load
    __all__ += ["RerankKitFusionRetriever", "hybrid_compressor", "hybrid_retriever"]

# Needs langchain-classic: imported on first access (PEP 562).
__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ["RerankKitFusionRetriever", "hybrid_compressor", "hybrid_retriever"],
        "langchain_rerankkit._hybrid",
    ),
    globals(),
    __all__,
)
