"""Infinity (michaelfeil/infinity, ``infinity_emb v2``): ``POST {base_url}/rerank``.

Sources: infinity_emb 0.0.78's own request/answer models (``infinity_emb.fastapi_schemas.
pymodels.RerankInput`` / ``ReRankResult``, read from the installed package): request
``{"query", "documents", "return_documents", "raw_scores", "model", "top_n"}``; answer
``{"object": "rerank", "results": [{"relevance_score", "index", "document"}], "model",
"usage"}``. Infinity refuses more than ``INFINITY_MAX_CLIENT_BATCH_SIZE`` documents per
request (default 2048, ``infinity_emb.env``): our default chunk size. Default port 7997. A
server started with ``--api-key`` wants ``Authorization: Bearer``: pass ``api_key``.

Score scale: with ``raw_scores=False`` (Infinity's default) the sigmoid of a one-label
cross-encoder's logit, in [0, 1]; with ``raw_scores=True`` the raw logit.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit.remote._base import RemoteReranker


class InfinityReranker(RemoteReranker):
    """A reranker served by Infinity; spec ``infinity:http://host:7997?model=NAME``.

    Args:
        base_url: The Infinity server's address (``http://host:7997``).
        model: The served model's id (``None``: the server's only model).
        raw_scores: Ask for raw logits instead of sigmoid scores.
        **connection: ``api_key``, ``timeout``, ``max_documents`` (2048), ... (see
            ``RemoteReranker``).

    Example:
        >>> InfinityReranker("http://127.0.0.1:7997", model="BAAI/bge-reranker-base").max_documents
        2048
    """

    service = "infinity"
    document_limit = 2048
    fixed_options: ClassVar[dict[str, Any]] = {"return_documents": False}
    option_names = ("raw_scores",)

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        raw_scores: bool = False,
        **connection: Any,
    ) -> None:
        super().__init__(base_url=base_url, model=model, **connection)
        self.raw_scores = bool(raw_scores)
