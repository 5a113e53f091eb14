"""LlamaIndex adapter for rerankkit: rerank retrieved nodes with any rerankkit backend.

Needs ``llama-index-core`` (``pip install "rerankkit[llamaindex]"``; without it, importing
this package raises ``rerankkit.errors.MissingExtraError`` saying so). The hybrid helpers
(``hybrid_query_engine``, ``hybrid_postprocessor``, ``RerankKitFusionRetriever``) load on
first use through the same ``rerankkit.adapting.lazy_exports`` as in ``langchain_rerankkit``;
they need nothing beyond ``llama-index-core``, so ``__all__`` always lists them.

Example:
    >>> from llamaindex_rerankkit import RerankKitPostprocessor
    >>> from rerankkit.testing import KeywordReranker
    >>> RerankKitPostprocessor(reranker=KeywordReranker(), top_n=2).top_n
    2

    In a query engine::

        post = RerankKitPostprocessor(reranker="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3)
        engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[post])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rerankkit.adapting import lazy_exports, require_extra

require_extra("llama_index.core", "llamaindex")  # the install hint, not a bare ImportError

from llamaindex_rerankkit._llm import as_rerankkit_llm  # noqa: E402
from llamaindex_rerankkit._postprocessor import RerankKitPostprocessor  # noqa: E402

if TYPE_CHECKING:
    from llamaindex_rerankkit._hybrid import (
        RerankKitFusionRetriever,
        hybrid_postprocessor,
        hybrid_query_engine,
    )

__all__ = [
    "RerankKitFusionRetriever",
    "RerankKitPostprocessor",
    "as_rerankkit_llm",
    "hybrid_postprocessor",
    "hybrid_query_engine",
]

# The hybrid helpers: imported on first access (PEP 562).
__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(
        ["RerankKitFusionRetriever", "hybrid_postprocessor", "hybrid_query_engine"],
        "llamaindex_rerankkit._hybrid",
    ),
    globals(),
    __all__,
)
