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
would change what is returned and that this server cannot honour answer 422, as do zero
documents (Cohere answers 400 and TEI 422 for them) and a count given as ``true``. Response scores
are always finite (:func:`json_safe`); ids, ``meta`` and ``created`` are filled by default.

rerankkit's extension, the same on every shape: the request fields ``min_relevance`` and
``on_no_relevant`` (the adaptive cut of a calibrated reranker, :mod:`rerankkit` core), and in
the response ``abstained`` (object shapes, only when the cut applied) and a result's
``below_min_relevance``. Clients that do not know them never see them.
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rerankkit._validation import check_min_relevance, check_query


def json_safe(score: float) -> float:
    """``score`` as a finite float: ``±inf`` (a NaN or failed score ranked last) becomes the
    largest finite float of that sign, so JSON can carry it and the order is kept.

    Example:
        >>> json_safe(0.25), json_safe(float("-inf")) == -sys.float_info.max
        (0.25, True)
    """
    if math.isfinite(score):
        return float(score)
    if math.isnan(score):  # the core turns NaN into -inf already; stay safe anyway
        return -sys.float_info.max
    return math.copysign(sys.float_info.max, score)


Score = Annotated[float, AfterValidator(json_safe)]


def _unsupported(why: str) -> AfterValidator:
    """A request field this server cannot honour: set (truthy), it answers 422 with ``why``."""

    def refuse(value: Any) -> Any:
        if value:
            raise PydanticCustomError("unsupported_option", why)
        return value

    return AfterValidator(refuse)


class RerankRequest(BaseModel):
    # Attribute docstrings are the fields' descriptions in the OpenAPI schema (``/docs``).
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    query: Annotated[str, AfterValidator(check_query)]
    """The search query (not blank)."""
    top_n: StrictInt | None = Field(default=None, ge=1)
    """Return at most this many results (all when omitted)."""
    model: str | None = None
    """Accepted for compatibility and not checked: the server serves one reranker."""
    # Strict: "0.5", true or [0.5] are a 422 naming the field (check_min_relevance's TypeError
    # would escape pydantic as a 500); the range is checked by the library's own check.
    min_relevance: Annotated[StrictFloat | None, AfterValidator(check_min_relevance)] = None
    """rerankkit's extension (not in the Cohere, Jina, TEI or Infinity APIs): the adaptive cut,
    keep only results with P(relevant) >= this (in [0, 1]), then ``top_n`` as a ceiling;
    default: the server's ``--min-relevance``. Needs a calibrated reranker (spec option
    ``?calibration=CAL.json``): on another the request answers 422 naming ``min_relevance``."""
    on_no_relevant: Literal["empty", "best"] | None = None
    """rerankkit's extension: no result reaches ``min_relevance``: ``"empty"`` returns no
    results, ``"best"`` the best one marked ``below_min_relevance: true``; the response says
    ``abstained: true`` either way (TEI's list shape: ``[]`` or the marked result). Default:
    the server's ``--on-no-relevant``."""


class CohereV2Request(RerankRequest):
    """Cohere v2 rerank request (``co.rerank(model=..., query=..., documents=..., top_n=...)``)."""

    documents: list[str] = Field(min_length=1)
    """Candidate texts (at least one); results refer to their positions."""
    max_tokens_per_doc: StrictInt | None = Field(default=None, ge=1)
    """Cut each document to its first N whitespace-separated words before scoring (an
    approximation of the model's tokens: the served model also truncates to its own
    max_length)."""


class TextDocument(BaseModel):
    """A document given as an object (Cohere v1 / Jina): only ``text`` is read."""

    model_config = ConfigDict(extra="allow")

    text: str


class CohereV1Request(RerankRequest):
    """Cohere v1 / Jina rerank request: documents are strings or ``{"text": ...}`` objects."""

    documents: list[str | TextDocument] = Field(min_length=1)
    """Candidate texts (at least one), as strings or {"text": ...} objects."""
    return_documents: bool | None = None
    """Include each result's document. Default: included (Jina's default; Cohere v1 clients
    read it as optional)."""
    rank_fields: Annotated[
        list[str] | None,
        _unsupported("structured documents are not supported; send texts"),
    ] = None
    """Not supported (answers 422 when given)."""
    max_chunks_per_doc: int | None = None
    """Ignored: long documents are handled by the served reranker's own settings (truncation
    or chunking, see its spec)."""

    @property
    def document_texts(self) -> list[str]:
        """The documents' texts, in request order."""
        return [d if isinstance(d, str) else d.text for d in self.documents]


class SelfHostedRequest(RerankRequest):
    """``POST /rerank``: TEI (``texts``) or Infinity (``documents``), exactly one of them."""

    texts: list[str] | None = Field(default=None, min_length=1)
    """TEI: candidate texts (at least one)."""
    documents: list[str] | None = Field(default=None, min_length=1)
    """Infinity: candidate texts (at least one)."""
    raw_scores: Annotated[
        bool,
        _unsupported(
            "scores are always on the served reranker's scale; serve "
            "'cross-encoder:MODEL?activation=\"none\"' for raw logits"
        ),
    ] = False
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
    def document_texts(self) -> list[str]:
        """The candidate texts, whichever field carries them."""
        return self.texts if self.texts is not None else self.documents or []


# --------------------------------------------------------------------------- responses


class _Version(BaseModel):
    version: str


class Meta(BaseModel):
    """Cohere's ``meta`` (only ``api_version`` is filled)."""

    api_version: _Version


def _request_id() -> str:
    return str(uuid.uuid4())


class CohereV2Result(BaseModel):
    index: int
    relevance_score: Score
    below_min_relevance: bool | None = None
    """rerankkit's extension: ``true`` on the one result kept by ``on_no_relevant="best"``."""


class _Abstaining(BaseModel):
    abstained: bool | None = None
    """rerankkit's extension, only when ``min_relevance`` applied: ``true`` when no result
    reaches it (no results, or the best one marked ``below_min_relevance``)."""


class CohereV2Response(_Abstaining):
    id: str = Field(default_factory=_request_id)
    results: list[CohereV2Result]
    meta: Meta = Meta(api_version=_Version(version="2"))


class DocumentText(BaseModel):
    text: str


class V1Result(CohereV2Result):
    document: DocumentText | None = None


class Usage(BaseModel):
    """Approximate token counts: whitespace-separated words of the query (once per document)
    and the documents. The server does not know every reranker's tokenizer."""

    prompt_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, query: str, texts: Sequence[str]) -> Usage:
        """The usage of scoring ``texts`` for ``query``.

        Example:
            >>> Usage.of("two words", ["a b c", "d"]).total_tokens
            8
        """
        words = len(query.split()) * len(texts) + sum(len(t.split()) for t in texts)
        return cls(prompt_tokens=words, total_tokens=words)


class V1Response(_Abstaining):
    """Cohere v1 and Jina in one: ``id``, ``results``, ``meta`` (Cohere), ``model``, ``usage``
    (Jina)."""

    id: str = Field(default_factory=_request_id)
    model: str
    results: list[V1Result]
    meta: Meta = Meta(api_version=_Version(version="1"))
    usage: Usage


class TeiResult(BaseModel):
    index: int
    score: Score
    text: str | None = None
    below_min_relevance: bool | None = None


class InfinityResult(BaseModel):
    relevance_score: Score
    index: int
    document: str | None = None
    below_min_relevance: bool | None = None


class InfinityResponse(_Abstaining):
    object: Literal["rerank"] = "rerank"
    results: list[InfinityResult]
    model: str
    usage: Usage
    id: str = Field(default_factory=lambda: f"rerankkit-{uuid.uuid4()}")
    created: int = Field(default_factory=lambda: int(time.time()))


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    batching: bool


class ErrorBody(BaseModel):
    """Every error: ``error`` + ``error_type`` (TEI's shape) and ``message`` (Cohere's)."""

    error: str
    error_type: str
    message: str
