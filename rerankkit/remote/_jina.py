"""Jina AI Reranker API (``POST https://api.jina.ai/v1/rerank``).

Sources: Jina's reranker API page (jina.ai/reranker) and the integrations that call it
(LangChain ``JinaRerank``: ``JINA_API_URL = "https://api.jina.ai/v1/rerank"``, key from
``JINA_API_KEY``; request ``{model, query, documents, top_n, return_documents}``; answer
``{"results": [{"index", "relevance_score", "document"?}], "usage"}``). We found no documented
per-request document count; 1000 documents per request is our choice (override with
``max_documents``).

Score scale: ``relevance_score`` as the model gives it (Jina does not document a range; the
v2 rerankers answer values in [0, 1]); comparable within one model only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit.remote._base import RemoteReranker


class JinaReranker(RemoteReranker):
    """Jina AI reranker API; spec ``jina:MODEL``.

    Args:
        model: A Jina reranker (``jina-reranker-v2-base-multilingual``, ...).
        **connection: ``base_url`` (default ``https://api.jina.ai``), ``api_key`` (default
            ``JINA_API_KEY``), ``timeout``, ... (see ``RemoteReranker``).

    Example:
        >>> JinaReranker("jina-reranker-v2-base-multilingual", api_key="jina_...")
        JinaReranker(model='jina-reranker-v2-base-multilingual', base_url='https://api.jina.ai')
    """

    service = "jina"
    default_base_url = "https://api.jina.ai"
    api_key_env = ("JINA_API_KEY",)
    requires_api_key = True
    path = "/v1/rerank"
    # Jina's request is Cohere-v1-shaped
    fixed_options: ClassVar[dict[str, Any]] = {"return_documents": False}

    def __init__(
        self, model: str = "jina-reranker-v2-base-multilingual", **connection: Any
    ) -> None:
        super().__init__(model=model, **connection)
