"""The rerank services: one ``RemoteReranker`` subclass each, declarations only.

Each class declares its endpoint, request fields, answer keys, per-request document limit and
API key variables (see :class:`rerankkit.remote.RemoteReranker`); the comment above each class
names the sources its wire format was checked against and the scale of its scores.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit._validation import check_choice
from rerankkit.remote._base import RemoteReranker


# Cohere Rerank: the v2 API (``/v2/rerank``) and the v1 API (``/v1/rerank``).
#
# Sources (checked for these two classes): the Cohere API reference
# (docs.cohere.com/reference/rerank, ``/v2/reference/rerank``) and the official SDK, ``cohere``
# 7.x: ``ClientV2.rerank`` and ``Client.rerank`` (fields ``model``, ``query``, ``documents``,
# ``top_n``, ``max_tokens_per_doc`` (v2, default 4096),
# ``return_documents``/``max_chunks_per_doc`` (v1)),
# ``cohere.environment.ClientEnvironment.PRODUCTION = "https://api.cohere.com"``, and the key from
# ``CO_API_KEY`` (documented; the SDK also reads ``COHERE_API_KEY``). The SDK documents "we
# recommend against sending more than 1,000 documents in a single request", our chunk size.
#
# Answer: ``{"results": [{"index": int, "relevance_score": float}, ...]}``. Score scale:
# ``relevance_score`` is normalised by Cohere to [0, 1] (higher = more relevant); scores are
# comparable within one model, not across models.
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


# Jina AI Reranker API (``POST https://api.jina.ai/v1/rerank``).
#
# Sources: Jina's reranker API page (jina.ai/reranker) and the integrations that call it
# (LangChain ``JinaRerank``: ``JINA_API_URL = "https://api.jina.ai/v1/rerank"``, key from
# ``JINA_API_KEY``; request ``{model, query, documents, top_n, return_documents}``; answer
# ``{"results": [{"index", "relevance_score", "document"?}], "usage"}``). We found no documented
# per-request document count; 1000 documents per request is our choice (override with
# ``max_documents``).
#
# Score scale: ``relevance_score`` as the model gives it (Jina does not document a range; the
# v2 rerankers answer values in [0, 1]); comparable within one model only.
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


# Voyage AI rerank API (``POST https://api.voyageai.com/v1/rerank``).
#
# Sources: Voyage's API reference as carried by its official TypeScript SDK (``RerankRequest``:
# ``query``, ``documents`` -- "The number of documents cannot exceed 1000" --, ``model``,
# ``top_k``, ``return_documents``, ``truncation``) and docs.voyageai.com/docs/reranker; key from
# ``VOYAGE_API_KEY``. Answer ``{"data": [{"index", "relevance_score", "document"?}], ...}``.
#
# Score scale: ``relevance_score`` as the model gives it (higher = more relevant); comparable
# within one model only.
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


# Mixedbread reranking API (``POST https://api.mixedbread.com/v1/reranking``).
#
# Sources: Mixedbread's API reference (mixedbread.com/api-reference/endpoints/reranking:
# request ``model``, ``query``, ``input`` (the documents), ``rank_fields``, ``top_k``,
# ``return_input``; ``Authorization: Bearer``) and its published example answer ``{"object":
# "list", "data": [{"index", "score", "input"?}], "usage"}``; key from ``MXBAI_API_KEY`` (the
# variable its LangChain, Haystack and LlamaIndex integrations read). Note the differences from
# Cohere: the documents go in ``input``, the cut is ``top_k`` (we always ask for every
# document), scores are under ``data[].score``. We found no documented per-request document
# count; 1000 is our choice (override with ``max_documents``).
#
# Score scale: ``score`` as the model gives it; comparable within one model only.
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


# Hugging Face text-embeddings-inference (TEI): ``POST {base_url}/rerank``.
#
# Sources: TEI's OpenAPI (``/docs`` of a running router) and the model cards that serve through
# it: request ``{"query", "texts", "raw_scores"?, "return_text"?, "truncate"?,
# "truncation_direction"?}``; answer a JSON list ``[{"index": int, "score": float, "text"?}]``.
# TEI refuses more than ``--max-client-batch-size`` texts per request (default 32): our
# default chunk size; raise ``max_documents`` to match a server started with a larger value.
# TEI has no key variable of its own; a router started with ``--api-key`` wants
# ``Authorization: Bearer``: pass ``api_key``.
#
# Score scale: with ``raw_scores=False`` (TEI's default) the model's logit through a sigmoid,
# in [0, 1]; with ``raw_scores=True`` the raw logit.
class TEIReranker(RemoteReranker):
    """A reranker served by text-embeddings-inference; spec ``tei:http://host:8080``.

    Args:
        base_url: The TEI router's address (``http://host:8080``).
        raw_scores: Ask for raw logits instead of sigmoid scores.
        truncate: Let TEI truncate pairs longer than the model's maximum length (otherwise it
            answers 413/422 for them; TEI's default is ``False``).
        **connection: ``api_key``, ``timeout``, ``max_documents`` (default 32), ... (see
            ``RemoteReranker``).

    Example:
        >>> TEIReranker("http://127.0.0.1:8080", truncate=True)
        TEIReranker(base_url='http://127.0.0.1:8080')
    """

    service = "tei"
    document_limit = 32
    documents_field = "texts"
    cut_field = None
    results_key = None
    score_key = "score"
    fixed_options: ClassVar[dict[str, Any]] = {"return_text": False}
    option_names = ("raw_scores", "truncate")

    def __init__(
        self, base_url: str, *, raw_scores: bool = False, truncate: bool = False, **connection: Any
    ) -> None:
        super().__init__(base_url=base_url, **connection)
        self.raw_scores = bool(raw_scores)
        self.truncate = bool(truncate)


# vLLM's pooling server: ``POST /v1/rerank`` (Jina/Cohere shape) or ``POST /score``.
#
# Sources: vLLM's OpenAI-compatible server docs (docs.vllm.ai, "Score API" and "Re-rank API";
# examples/pooling/score): ``/v1/rerank`` (also ``/rerank``, ``/v2/rerank``) takes ``{"model",
# "query", "documents", "top_n"}`` and answers ``{"results": [{"index", "relevance_score",
# "document"}]}``; ``/score`` takes ``{"model", "text_1": query, "text_2": [documents]}`` and
# answers ``{"data": [{"index", "object": "score", "score"}]}``. vLLM documents no per-request
# document limit (it batches internally); 1000 per request is our choice. A server started with
# ``--api-key`` wants ``Authorization: Bearer``: pass ``api_key``.
#
# Score scale: what the model's pooler gives: for a one-label cross-encoder (bge-reranker,
# ms-marco MiniLM) the sigmoid of the logit, in [0, 1]; the same number on both endpoints.
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


# Infinity (michaelfeil/infinity, ``infinity_emb v2``): ``POST {base_url}/rerank``.
#
# Sources: infinity_emb 0.0.78's own request/answer models (``infinity_emb.fastapi_schemas.
# pymodels.RerankInput`` / ``ReRankResult``, read from the installed package): request
# ``{"query", "documents", "return_documents", "raw_scores", "model", "top_n"}``; answer
# ``{"object": "rerank", "results": [{"relevance_score", "index", "document"}], "model",
# "usage"}``. Infinity refuses more than ``INFINITY_MAX_CLIENT_BATCH_SIZE`` documents per
# request (default 2048, ``infinity_emb.env``): our default chunk size. Default port 7997. A
# server started with ``--api-key`` wants ``Authorization: Bearer``: pass ``api_key``.
#
# Score scale: with ``raw_scores=False`` (Infinity's default) the sigmoid of a one-label
# cross-encoder's logit, in [0, 1]; with ``raw_scores=True`` the raw logit.
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
