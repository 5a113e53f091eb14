"""Request and response bodies of every wire shape the server speaks (pydantic models).

Field names and defaults follow each service's public API reference:

- Cohere v2 ``POST /v2/rerank`` and v1 ``POST /v1/rerank`` (docs.cohere.com, API reference
  "Rerank"; the official ``cohere`` SDK's ``V2RerankResponse``/``RerankResponse`` types).
- Jina ``POST /v1/rerank`` (api.jina.ai): the same request as Cohere v1; results carry
  ``document: {"text"}`` and the response a ``usage`` object. One superset response serves
  both (each SDK ignores the other's fields).
- Hugging Face text-embeddings-inference ``POST /rerank`` (``texts``, ``raw_scores``,
  ``return_text``, ``truncate``): a JSON list of ``{index, score, text?}``.
- Infinity ``POST /rerank`` (``documents``, ``return_documents``, ``raw_scores``, ``top_n``):
  ``{"object": "rerank", "results": [{relevance_score, index, document?}], model, usage, id,
  created}``, ``document`` a plain string.

Unknown request fields are ignored (clients add optional fields over time); fields that
would change what is returned and that this server cannot honour answer 422 (see
``rerankkit.serve._wire``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator

from rerankkit._validation import check_query


class _Request(BaseModel):
    # Attribute docstrings are the fields' descriptions in the OpenAPI schema (``/docs``).
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    query: Annotated[str, AfterValidator(check_query)]
    """The search query (not blank)."""
    top_n: StrictInt | None = Field(default=None, ge=1)
    """Return at most this many results (all when omitted)."""
    model: str | None = None
    """Accepted for compatibility and not checked: the server serves one reranker."""


class CohereV2Request(_Request):
    """Cohere v2 rerank request (``co.rerank(model=..., query=..., documents=..., top_n=...)``)."""

    documents: list[str]
    """Candidate texts; results refer to their positions."""
    max_tokens_per_doc: int | None = Field(default=None, ge=1)
    """Cut each document to its first N whitespace-separated words before scoring (an
    approximation of the model's tokens: the served model also truncates to its own
    max_length)."""


class TextDocument(BaseModel):
    """A document given as an object (Cohere v1 / Jina): only ``text`` is read."""

    model_config = ConfigDict(extra="allow")

    text: str


class CohereV1Request(_Request):
    """Cohere v1 / Jina rerank request: documents are strings or ``{"text": ...}`` objects."""

    documents: list[str | TextDocument]
    """Candidate texts, as strings or {"text": ...} objects."""
    return_documents: bool | None = None
    """Include each result's document. Default: included (Jina's default; Cohere v1 clients
    read it as optional)."""
    rank_fields: list[str] | None = None
    """Not supported (answers 422 when given)."""
    max_chunks_per_doc: int | None = None
    """Ignored: long documents are handled by the served reranker's own settings (truncation
    or chunking, see its spec)."""


class SelfHostedRequest(_Request):
    """``POST /rerank``: TEI (``texts``) or Infinity (``documents``), exactly one of them."""

    texts: list[str] | None = None
    """TEI: candidate texts."""
    documents: list[str] | None = None
    """Infinity: candidate texts."""
    raw_scores: bool = False
    """Not supported when true (answers 422): scores are always on the served reranker's own
    scale; serve cross-encoder:...?activation="none" for raw logits."""
    return_text: bool = False
    """TEI: include each result's text."""
    return_documents: bool = False
    """Infinity: include each result's document."""
    truncate: bool | None = None
    """Accepted; the served reranker always truncates (or chunks) long inputs."""
    truncation_direction: Literal["Left", "Right", "left", "right"] | None = None
    """Accepted; truncation follows the served reranker."""

    @model_validator(mode="after")
    def _one_kind_of_documents(self) -> SelfHostedRequest:
        if (self.texts is None) == (self.documents is None):
            raise ValueError(
                "give exactly one of texts (TEI shape) or documents (Infinity/Jina shape)"
            )
        return self

    @property
    def tei(self) -> bool:
        """Whether the request has the TEI shape (and gets the TEI response)."""
        return self.texts is not None


# --------------------------------------------------------------------------- responses


class _Version(BaseModel):
    version: str


class Meta(BaseModel):
    """Cohere's ``meta`` (only ``api_version`` is filled)."""

    api_version: _Version


class CohereV2Result(BaseModel):
    index: int
    relevance_score: float


class CohereV2Response(BaseModel):
    id: str
    results: list[CohereV2Result]
    meta: Meta


class DocumentText(BaseModel):
    text: str


class V1Result(BaseModel):
    index: int
    relevance_score: float
    document: DocumentText | None = None


class Usage(BaseModel):
    """Approximate token counts: whitespace-separated words of the query and documents."""

    prompt_tokens: int
    total_tokens: int


class V1Response(BaseModel):
    """Cohere v1 and Jina in one: ``id``, ``results``, ``meta`` (Cohere), ``model``, ``usage``
    (Jina)."""

    id: str
    model: str
    results: list[V1Result]
    meta: Meta
    usage: Usage


class TeiResult(BaseModel):
    index: int
    score: float
    text: str | None = None


class InfinityResult(BaseModel):
    relevance_score: float
    index: int
    document: str | None = None


class InfinityResponse(BaseModel):
    object: Literal["rerank"] = "rerank"
    results: list[InfinityResult]
    model: str
    usage: Usage
    id: str
    created: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    batching: bool


class ErrorBody(BaseModel):
    """Every error: ``error`` + ``error_type`` (TEI's shape) and ``message`` (Cohere's)."""

    error: str
    error_type: str
    message: str
