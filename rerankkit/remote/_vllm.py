"""vLLM's pooling server: ``POST /v1/rerank`` (Jina/Cohere shape) or ``POST /score``.

Sources: vLLM's OpenAI-compatible server docs (docs.vllm.ai, "Score API" and "Re-rank API";
examples/pooling/score): ``/v1/rerank`` (also ``/rerank``, ``/v2/rerank``) takes ``{"model",
"query", "documents", "top_n"}`` and answers ``{"results": [{"index", "relevance_score",
"document"}]}``; ``/score`` takes ``{"model", "text_1": query, "text_2": [documents]}`` and
answers ``{"data": [{"index", "object": "score", "score"}]}``. vLLM documents no per-request
document limit (it batches internally); 1000 per request is our choice. A server started with
``--api-key`` wants ``Authorization: Bearer``: pass ``api_key``.

Score scale: what the model's pooler gives: for a one-label cross-encoder (bge-reranker,
ms-marco MiniLM) the sigmoid of the logit, in [0, 1]; the same number on both endpoints.
"""

from __future__ import annotations

from typing import Any

from rerankkit._validation import check_choice
from rerankkit.remote._base import RemoteReranker


class VLLMReranker(RemoteReranker):
    """A cross-encoder served by ``vllm serve``; spec ``vllm:http://host:8000?model=NAME``.

    Args:
        base_url: The vLLM server's address (``http://host:8000``).
        model: The served model's name (``None``: let the server pick its only model).
        endpoint: ``"rerank"`` (``/v1/rerank``) or ``"score"`` (``/score``).
        **connection: ``api_key``, ``timeout``, ``max_documents`` (1000), ... (see
            ``RemoteReranker``).

    Example:
        >>> VLLMReranker("http://127.0.0.1:8000", model="BAAI/bge-reranker-base", endpoint="score")
        VLLMReranker(model='BAAI/bge-reranker-base', base_url='http://127.0.0.1:8000')
    """

    service = "vllm"
    path = "/v1/rerank"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        endpoint: str = "rerank",
        **connection: Any,
    ) -> None:
        super().__init__(base_url=base_url, model=model, **connection)
        self.endpoint = check_choice(endpoint, "endpoint", ("rerank", "score"))
        if self.endpoint == "score":  # {"model", "text_1", "text_2"} -> {"data": [{"score"}]}
            self.path = "/score"
            self.query_field = "text_1"
            self.documents_field = "text_2"
            self.cut_field = None
            self.results_key = "data"
            self.score_key = "score"
