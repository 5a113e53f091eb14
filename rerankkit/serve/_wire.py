"""Pure conversions between wire shapes and ``RerankResult`` lists, and the request limits.

Nothing here does I/O, so every rule (limits, JSON-safe scores, each response shape) is
tested without a server.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from rerankkit._result import RerankResult
from rerankkit.serve._schemas import (
    CohereV1Request,
    CohereV2Response,
    CohereV2Result,
    DocumentText,
    InfinityResponse,
    InfinityResult,
    Meta,
    SelfHostedRequest,
    TeiResult,
    Usage,
    V1Response,
    V1Result,
    _Version,
)
from rerankkit.serve._settings import ServeSettings


@dataclass
class RequestError(Exception):
    """A request the server refuses: HTTP ``status``, a short ``error_type``, a message.

    Example:
        >>> error = RequestError(413, "too_many_documents", "documents: 5 > max_documents=4")
        >>> error.status, str(error)
        (413, 'documents: 5 > max_documents=4')
    """

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


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


def check_limits(query: str, texts: Sequence[str], settings: ServeSettings) -> None:
    """Raise a 413 ``RequestError`` when the request exceeds the server's limits.

    Raises:
        RequestError: Too many documents, a document (named by position) or the query
            longer than allowed.

    Example:
        >>> settings = ServeSettings(max_documents=2, max_document_chars=5)
        >>> try:
        ...     check_limits("q", ["short", "too long"], settings)
        ... except RequestError as error:
        ...     print(error.status, error)
        413 documents[1] has 8 characters, more than max_document_chars=5
    """
    if len(texts) > settings.max_documents:
        raise RequestError(
            413,
            "too_many_documents",
            f"documents: {len(texts)} documents, more than max_documents="
            f"{settings.max_documents}; split the request",
        )
    if len(query) > settings.max_query_chars:
        raise RequestError(
            413,
            "query_too_long",
            f"query has {len(query)} characters, more than max_query_chars="
            f"{settings.max_query_chars}",
        )
    for position, text in enumerate(texts):
        if len(text) > settings.max_document_chars:
            raise RequestError(
                413,
                "document_too_long",
                f"documents[{position}] has {len(text)} characters, more than "
                f"max_document_chars={settings.max_document_chars}",
            )


def unsupported(option: str, why: str) -> RequestError:
    """A 422 for a request option that would change the answer and cannot be honoured."""
    return RequestError(422, "unsupported_option", f"{option}: {why}")


def first_words(text: str, count: int) -> str:
    """The first ``count`` whitespace-separated words of ``text`` (joined by single spaces
    when it is cut; unchanged when it is not).

    Example:
        >>> first_words("one  two three", 2), first_words("one two", 5)
        ('one two', 'one two')
    """
    words = text.split()
    return text if len(words) <= count else " ".join(words[:count])


def usage(query: str, texts: Sequence[str]) -> Usage:
    """Approximate usage: whitespace-separated words of the query (once per document) and
    the documents. The server does not know every reranker's tokenizer.

    Example:
        >>> usage("two words", ["a b c", "d"]).total_tokens
        8
    """
    words = len(query.split()) * len(texts) + sum(len(t.split()) for t in texts)
    return Usage(prompt_tokens=words, total_tokens=words)


def v1_texts(request: CohereV1Request) -> list[str]:
    """The texts of a Cohere v1 / Jina request (strings or ``{"text": ...}`` objects)."""
    if request.rank_fields:
        raise unsupported("rank_fields", "structured documents are not supported; send texts")
    return [d if isinstance(d, str) else d.text for d in request.documents]


def self_hosted_texts(request: SelfHostedRequest) -> list[str]:
    """The texts of a TEI or Infinity request."""
    if request.raw_scores:
        raise unsupported(
            "raw_scores",
            "scores are always on the served reranker's scale; serve "
            "'cross-encoder:MODEL?activation=\"none\"' for raw logits",
        )
    texts = request.texts if request.texts is not None else request.documents
    return list(texts or [])


def cohere_v2(results: Sequence[RerankResult], request_id: str) -> CohereV2Response:
    """The Cohere v2 response.

    Example:
        >>> cohere_v2([RerankResult(1, 0.9), RerankResult(0, 0.1)], "id-1").model_dump()
        {'id': 'id-1', 'results': [{'index': 1, 'relevance_score': 0.9}, \
{'index': 0, 'relevance_score': 0.1}], 'meta': {'api_version': {'version': '2'}}}
    """
    return CohereV2Response(
        id=request_id,
        results=[
            CohereV2Result(index=r.index, relevance_score=json_safe(r.score)) for r in results
        ],
        meta=Meta(api_version=_Version(version="2")),
    )


def v1(
    results: Sequence[RerankResult],
    query: str,
    texts: Sequence[str],
    *,
    model: str,
    request_id: str,
    return_documents: bool | None,
) -> V1Response:
    """The Cohere v1 / Jina response (documents included unless ``return_documents`` is
    ``False``).

    Example:
        >>> body = v1([RerankResult(0, 1.0)], "q", ["doc"], model="m", request_id="x",
        ...           return_documents=None).model_dump(exclude_none=True)
        >>> body["results"], body["usage"]
        ([{'index': 0, 'relevance_score': 1.0, 'document': {'text': 'doc'}}], \
{'prompt_tokens': 2, 'total_tokens': 2})
    """
    include = return_documents is not False
    return V1Response(
        id=request_id,
        model=model,
        results=[
            V1Result(
                index=r.index,
                relevance_score=json_safe(r.score),
                document=DocumentText(text=texts[r.index]) if include else None,
            )
            for r in results
        ],
        meta=Meta(api_version=_Version(version="1")),
        usage=usage(query, texts),
    )


def tei(
    results: Sequence[RerankResult], texts: Sequence[str], *, return_text: bool
) -> list[TeiResult]:
    """The TEI response: a list of ``{index, score, text?}``, best first.

    Example:
        >>> [t.model_dump(exclude_none=True) for t in tei([RerankResult(1, 0.5)], ["a", "b"],
        ...                                                return_text=True)]
        [{'index': 1, 'score': 0.5, 'text': 'b'}]
    """
    return [
        TeiResult(
            index=r.index, score=json_safe(r.score), text=texts[r.index] if return_text else None
        )
        for r in results
    ]


def infinity(
    results: Sequence[RerankResult],
    query: str,
    texts: Sequence[str],
    *,
    model: str,
    request_id: str,
    created: int,
    return_documents: bool,
) -> InfinityResponse:
    """The Infinity response (``document`` a plain string when asked for)."""
    return InfinityResponse(
        results=[
            InfinityResult(
                relevance_score=json_safe(r.score),
                index=r.index,
                document=texts[r.index] if return_documents else None,
            )
            for r in results
        ],
        model=model,
        usage=usage(query, texts),
        id=request_id,
        created=created,
    )
