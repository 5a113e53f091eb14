"""Mixedbread reranking API (``POST https://api.mixedbread.com/v1/reranking``).

Sources: Mixedbread's API reference (mixedbread.com/api-reference/endpoints/reranking:
request ``model``, ``query``, ``input`` (the documents), ``rank_fields``, ``top_k``,
``return_input``; ``Authorization: Bearer``) and its published example answer ``{"object":
"list", "data": [{"index", "score", "input"?}], "usage"}``; key from ``MXBAI_API_KEY`` (the
variable its LangChain, Haystack and LlamaIndex integrations read). Note the differences from
Cohere: the documents go in ``input``, the cut is ``top_k`` (we always ask for every
document), scores are under ``data[].score``. We found no documented per-request document
count; 1000 is our choice (override with ``max_documents``).

Score scale: ``score`` as the model gives it; comparable within one model only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit.remote._base import RemoteReranker


class MixedbreadReranker(RemoteReranker):
    """Mixedbread reranker; spec ``mixedbread:MODEL``.

    Args:
        model: A Mixedbread reranker (``mixedbread-ai/mxbai-rerank-large-v2``, ...).
        **connection: ``base_url`` (default ``https://api.mixedbread.com``), ``api_key``
            (default ``MXBAI_API_KEY``), ``timeout``, ... (see ``RemoteReranker``).

    Example:
        >>> reranker = MixedbreadReranker("mixedbread-ai/mxbai-rerank-large-v2", api_key="mx-...")
        >>> reranker.client.base_url, reranker.path
        ('https://api.mixedbread.com', '/v1/reranking')
    """

    service = "mixedbread"
    default_base_url = "https://api.mixedbread.com"
    api_key_env = ("MXBAI_API_KEY",)
    requires_api_key = True
    path = "/v1/reranking"
    documents_field = "input"
    cut_field = "top_k"
    results_key = "data"
    score_key = "score"
    fixed_options: ClassVar[dict[str, Any]] = {"return_input": False}

    def __init__(
        self, model: str = "mixedbread-ai/mxbai-rerank-large-v2", **connection: Any
    ) -> None:
        super().__init__(model=model, **connection)
