"""Cohere Rerank: the v2 API (``/v2/rerank``) and the v1 API (``/v1/rerank``).

Sources (checked for this module): the Cohere API reference (docs.cohere.com/reference/rerank,
``/v2/reference/rerank``) and the official SDK, ``cohere`` 7.x: ``ClientV2.rerank`` and
``Client.rerank`` (fields ``model``, ``query``, ``documents``, ``top_n``,
``max_tokens_per_doc`` (v2, default 4096), ``return_documents``/``max_chunks_per_doc`` (v1)),
``cohere.environment.ClientEnvironment.PRODUCTION = "https://api.cohere.com"``, and the key
from ``CO_API_KEY`` (documented; the SDK also reads ``COHERE_API_KEY``). The SDK documents
"we recommend against sending more than 1,000 documents in a single request", our chunk size.

Answer: ``{"results": [{"index": int, "relevance_score": float}, ...]}``. Score scale:
``relevance_score`` is normalised by Cohere to [0, 1] (higher = more relevant); scores are
comparable within one model, not across models.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit.remote._base import RemoteReranker


class CohereReranker(RemoteReranker):
    """Cohere Rerank v2 (``POST /v2/rerank``); spec ``cohere:MODEL``.

    Args:
        model: A Cohere rerank model (``rerank-v3.5``, ``rerank-english-v3.0``, ...).
        max_tokens_per_doc: Cohere truncates each document to this many tokens
            (``None``: the service default, 4096).
        **connection: ``base_url`` (default ``https://api.cohere.com``; any Cohere-v2-shaped
            server, ``rerankkit serve`` included), ``api_key`` (default ``CO_API_KEY`` or
            ``COHERE_API_KEY``), ``timeout``, ``max_retries``, ... (see ``RemoteReranker``).

    Raises:
        rerankkit.errors.RemoteServiceError: From ``rerank``: the service failed for good, or
            no API key was given or found in the environment on construction (raised before
            any request is sent, naming ``CO_API_KEY`` and ``api_key``).

    Example:
        >>> reranker = CohereReranker("rerank-v3.5", api_key="sk-...")
        >>> reranker
        CohereReranker(model='rerank-v3.5', base_url='https://api.cohere.com')
        >>> reranker.max_documents
        1000
    """

    service = "cohere"
    default_base_url = "https://api.cohere.com"
    api_key_env = ("CO_API_KEY", "COHERE_API_KEY")
    requires_api_key = True
    path = "/v2/rerank"
    option_names = ("max_tokens_per_doc",)

    def __init__(
        self,
        model: str = "rerank-v3.5",
        *,
        max_tokens_per_doc: int | None = None,
        **connection: Any,
    ) -> None:
        super().__init__(model=model, **connection)
        self.max_tokens_per_doc = max_tokens_per_doc


class CohereV1Reranker(RemoteReranker):
    """Cohere Rerank v1 (``POST /v1/rerank``); spec ``cohere-v1:MODEL``.

    For older deployments and Cohere-v1-shaped servers. Same key variables, limit and score
    scale as :class:`CohereReranker`.

    Example:
        >>> CohereV1Reranker("rerank-english-v3.0", api_key="sk-...")
        CohereV1Reranker(model='rerank-english-v3.0', base_url='https://api.cohere.com')
    """

    service = "cohere-v1"
    default_base_url = "https://api.cohere.com"
    api_key_env = ("CO_API_KEY", "COHERE_API_KEY")
    requires_api_key = True
    path = "/v1/rerank"
    fixed_options: ClassVar[dict[str, Any]] = {"return_documents": False}

    def __init__(self, model: str = "rerank-english-v3.0", **connection: Any) -> None:
        super().__init__(model=model, **connection)
