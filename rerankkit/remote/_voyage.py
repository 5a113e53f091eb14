"""Voyage AI rerank API (``POST https://api.voyageai.com/v1/rerank``).

Sources: Voyage's API reference as carried by its official TypeScript SDK (``RerankRequest``:
``query``, ``documents`` -- "The number of documents cannot exceed 1000" --, ``model``,
``top_k``, ``return_documents``, ``truncation``) and docs.voyageai.com/docs/reranker; key from
``VOYAGE_API_KEY``. Answer ``{"data": [{"index", "relevance_score", "document"?}], ...}``.

Score scale: ``relevance_score`` as the model gives it (higher = more relevant); comparable
within one model only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit.remote._base import RemoteReranker


class VoyageReranker(RemoteReranker):
    """Voyage AI reranker; spec ``voyage:MODEL``.

    Args:
        model: A Voyage reranker (``rerank-2.5``, ``rerank-2.5-lite``, ...).
        truncation: Let Voyage truncate a too-long query or document (its default, ``True``);
            ``False`` makes it answer an error instead.
        **connection: ``base_url`` (default ``https://api.voyageai.com``), ``api_key``
            (default ``VOYAGE_API_KEY``), ``timeout``, ... (see ``RemoteReranker``).

    Example:
        >>> VoyageReranker("rerank-2.5", api_key="pa-...").max_documents
        1000
    """

    service = "voyage"
    default_base_url = "https://api.voyageai.com"
    api_key_env = ("VOYAGE_API_KEY",)
    requires_api_key = True
    path = "/v1/rerank"
    cut_field = "top_k"
    results_key = "data"
    fixed_options: ClassVar[dict[str, Any]] = {"return_documents": False}
    option_names = ("truncation",)

    def __init__(
        self, model: str = "rerank-2.5", *, truncation: bool = True, **connection: Any
    ) -> None:
        super().__init__(model=model, **connection)
        self.truncation = bool(truncation)
