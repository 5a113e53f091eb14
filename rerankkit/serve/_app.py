"""The ASGI app of ``rerankkit serve``: any reranker behind the APIs RAG apps already call.

Routes (OpenAPI docs at ``/docs``, schema at ``/openapi.json``):

===================  ============================================================  ==========
route                request -> response                                           shape of
===================  ============================================================  ==========
``POST /v2/rerank``  ``{model, query, documents: [str], top_n, max_tokens_per_doc}``  Cohere v2
                     -> ``{id, results: [{index, relevance_score}], meta}``
``POST /v1/rerank``  ``{model, query, documents: [str | {text}], top_n,``              Cohere v1,
                     ``return_documents}`` -> ``{id, model, results: [{index,``         Jina
                     ``relevance_score, document: {text}}], meta, usage}``
``POST /rerank``     ``{query, texts, return_text}`` -> ``[{index, score, text}]``     TEI
``POST /rerank``     ``{query, documents, top_n, return_documents}`` -> ``{object,``  Infinity
                     ``results: [{relevance_score, index, document}], model, usage}``
``GET /health``      ``{status: "ok", model, batching}``
``GET /metrics``     Prometheus text (see :class:`rerankkit.serve._metrics.ServeMetrics`)
===================  ============================================================  ==========

Results are best first; ``index`` is the position in the request's documents; scores are the
served reranker's own scale, always finite (a failed or NaN score, ranked last, is sent as
the most negative finite float). rerankkit's extension on every rerank route: the request
fields ``min_relevance`` / ``on_no_relevant`` (the adaptive cut; a calibrated reranker only,
422 otherwise; server defaults ``--min-relevance`` / ``--on-no-relevant``), and in the
response ``abstained`` (object shapes) and ``below_min_relevance`` on a result.
Errors are JSON ``{"error", "error_type", "message"}``: 400 (a body that is not UTF-8), 401
(missing or wrong bearer key, checked before the body is read), 408 (the body did not arrive
within ``read_timeout_s``), 413 (the body, a document, the query or the document count over its
limit; the body's before it is read), 422 (malformed request, empty query, zero documents,
``top_n < 1`` or not an integer, text that is not valid Unicode naming ``documents[i]``, an
unsupported option, ``min_relevance`` on an uncalibrated reranker), 503 with ``Retry-After``
(the queue is full by requests or pairs, or the work ahead would pass the deadline; the header
estimates when it will not be), 504 (not answered within ``request_timeout_s``; its work was
dropped), 500 (the reranker failed; the message names the error). A client that disconnects has
its work dropped at whatever stage it is (queued, merged, running); ``/metrics`` counts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rerankkit._base import Reranker, check_relevance_cut
from rerankkit._ordering import BELOW_MIN_RELEVANCE_KEY, RelevanceCut
from rerankkit._result import RerankResult
from rerankkit._validation import check_instance
from rerankkit.compose._batching import BatchingReranker
from rerankkit.errors import InvalidTextError
from rerankkit.serve._admission import LoadMeter
from rerankkit.serve._guard import Guard, error_response
from rerankkit.serve._metrics import ServeMetrics
from rerankkit.serve._schemas import (
    CohereV1Request,
    CohereV2Request,
    CohereV2Response,
    CohereV2Result,
    DocumentText,
    ErrorBody,
    Health,
    InfinityResponse,
    InfinityResult,
    RerankRequest,
    SelfHostedRequest,
    TeiResult,
    Usage,
    V1Response,
    V1Result,
)
from rerankkit.serve._settings import ServeSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")

ROUTES = ("/v2/rerank", "/v1/rerank", "/rerank", "/health", "/metrics")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "The body is not UTF-8 text"),
        (401, "Missing or wrong bearer API key (only when the server has one)"),
        (408, "The body did not arrive within read_timeout_s"),
        (413, "The body, the document count, a document or the query over its limit"),
        (
            422,
            "Malformed request, empty query, zero documents, top_n < 1 or not an integer, text "
            "that is not valid Unicode (names documents[i] or query), an unsupported option, "
            "or min_relevance on an uncalibrated reranker",
        ),
        (500, "The reranker failed"),
        (
            503,
            "The queue is full (requests or pairs) or the work ahead would pass the "
            "deadline: retry after Retry-After seconds (an estimate from the queue and the "
            "measured throughput)",
        ),
        (504, "Not answered within request_timeout_s; its work was dropped"),
    )
}


# Module level: the route signatures are read from their string annotations (PEP 563), which
# can only name module globals.
_BEARER = HTTPBearer(auto_error=False, description="The server's --api-key")


class RequestError(StarletteHTTPException):
    """A request the server refuses: HTTP ``status``, a short ``error_type``, a message."""

    def __init__(
        self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message, dict(headers or {}))
        self.error_type = error_type


def check_limits(query: str, texts: list[str], settings: ServeSettings) -> None:
    """Raise a 413 ``RequestError`` when the request exceeds the server's limits.

    Raises:
        RequestError: Too many documents, a document (named by position) or the query
            longer than allowed.

    Example:
        >>> settings = ServeSettings(max_documents=2, max_document_chars=5)
        >>> try:
        ...     check_limits("q", ["short", "too long"], settings)
        ... except RequestError as error:
        ...     print(error.status_code, error.detail)
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


async def within_deadline(work: Awaitable[T], seconds: float) -> T | None:
    """``await work``, or ``None`` once ``seconds`` have passed (the work is then cancelled,
    which drops it from the batcher's queue or stops its model call). A ``TimeoutError``
    raised by the work itself stays an error (``asyncio.wait_for`` would blur the two).

    Example:
        >>> async def slow():
        ...     await asyncio.sleep(10)
        >>> asyncio.run(within_deadline(slow(), 0.01)) is None
        True
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    finally:
        if not task.done():  # the deadline passed, or our own caller was cancelled
            task.cancel()
    if not done:
        await asyncio.wait({task})  # let the cancellation land (it drops queued work)
        return None
    return task.result()


def first_words(text: str, count: int) -> str:
    """The first ``count`` whitespace-separated words of ``text`` (joined by single spaces
    when it is cut; unchanged when it is not).

    Example:
        >>> first_words("one  two three", 2), first_words("one two", 5)
        ('one two', 'one two')
    """
    words = text.split()
    return text if len(words) <= count else " ".join(words[:count])


class _MetricsMiddleware:
    """Times and counts every HTTP request (pure ASGI, so streaming and errors count too)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 499  # no answer sent: the client went away

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"  # bounded label values
            self.metrics.observe(route, status, time.perf_counter() - start)


def below(result: RerankResult) -> dict[str, bool]:
    """``{"below_min_relevance": True}`` for the result ``on_no_relevant="best"`` kept, else
    ``{}`` (the field stays out of the response).

    Example:
        >>> below(RerankResult(0, 0.2, {"below_min_relevance": True})), below(RerankResult(1, 0.9))
        ({'below_min_relevance': True}, {})
    """
    return {BELOW_MIN_RELEVANCE_KEY: True} if result.details.get(BELOW_MIN_RELEVANCE_KEY) else {}


def _served(
    reranker: Reranker, settings: ServeSettings
) -> tuple[Reranker, BatchingReranker | None]:
    """The reranker the routes call, and the batcher this app owns (closed at shutdown)."""
    if isinstance(reranker, BatchingReranker):
        return reranker, None
    if settings.batching and reranker.pointwise:
        batcher = BatchingReranker(
            reranker, max_batch_pairs=settings.max_batch_pairs, max_wait_ms=settings.max_wait_ms
        )
        return batcher, batcher
    if settings.batching:
        logger.info("%r is not pointwise: requests are not merged", reranker)
    return reranker, None


def create_app(reranker: Reranker, settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``reranker`` with the Cohere, Jina, TEI and Infinity shapes.

    Concurrent requests are merged into shared model calls by a
    :class:`rerankkit.BatchingReranker` when ``settings.batching`` and the
    reranker is pointwise (pass a ``BatchingReranker`` yourself to choose its limits; it is
    then used as is and not closed by the app).

    Args:
        reranker: Any rerankkit reranker.
        settings: Limits, queue bound, API key, batching (defaults: :class:`ServeSettings`).

    Returns:
        The app; run it with uvicorn (``rerankkit serve`` does) or mount it elsewhere.

    Raises:
        TypeError: ``reranker`` is not a ``Reranker`` or ``settings`` not ``ServeSettings``.
        ValueError: ``settings.min_relevance`` with a reranker that is not calibrated
            (:attr:`rerankkit.Reranker.calibrated_scores`); the message says how to calibrate.

    Example:
        >>> import asyncio, httpx
        >>> from rerankkit.testing import KeywordReranker
        >>> app = create_app(KeywordReranker(), ServeSettings(model_name="keyword"))
        >>> async def ask():
        ...     transport = httpx.ASGITransport(app=app)
        ...     async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        ...         response = await client.post("/v2/rerank", json={
        ...             "model": "keyword", "query": "red apple",
        ...             "documents": ["a pear", "a red apple", "apple pie"], "top_n": 2})
        ...         return response.status_code, response.json()["results"]
        >>> asyncio.run(ask())
        (200, [{'index': 1, 'relevance_score': 2.0}, {'index': 2, 'relevance_score': 1.0}])
    """
    check_instance(reranker, Reranker, "reranker")
    settings = ServeSettings() if settings is None else settings
    check_instance(settings, ServeSettings, "settings")
    check_relevance_cut(reranker, settings.min_relevance, settings.on_no_relevant)
    served, owned = _served(reranker, settings)
    batcher = served if isinstance(served, BatchingReranker) else None
    # Admitted requests and pairs: only touched on the server's event loop thread.
    meter = LoadMeter(
        settings.max_queue,
        settings.max_queue_pairs,
        settings.request_timeout_s,
        settings.retry_after_s,
    )
    metrics = ServeMetrics(
        queue_depth=lambda: meter.requests,
        queue_pairs=lambda: meter.pairs,
        pairs_per_s=lambda: meter.pairs_per_s or 0.0,
        queued_pairs=lambda: batcher.queued_pairs if batcher else 0,
        model_calls=lambda: batcher.model_calls if batcher else 0,
        batch_abandoned=lambda: batcher.abandoned if batcher else 0,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned is not None:  # serves what is queued, then stops its worker thread
            await asyncio.to_thread(owned.close)
        # Here, not after uvicorn returns: uvicorn re-raises SIGTERM once it has shut down.
        logger.info("stopped serving %s", settings.model_name)

    app = FastAPI(
        title="rerankkit",
        summary="Rerank documents for a query: Cohere, Jina, TEI and Infinity request shapes.",
        lifespan=lifespan,
        responses={},
    )
    app.state.reranker = served
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.meter = meter
    # Last added runs first: CORS (its headers on every answer), then metrics (every answer
    # counted, refusals included), then the guard (key, body size and time, disconnects).
    app.add_middleware(Guard, settings=settings, metrics=metrics)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    if settings.cors_origin:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origin),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        error_type = error.error_type if isinstance(error, RequestError) else "http_error"
        headers = dict(error.headers or {})
        return error_response(error.status_code, error_type, str(error.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for item in error.errors():
            location = ".".join(str(part) for part in item["loc"] if part != "body")
            message = item["msg"].removeprefix("Value error, ")  # our checks' own words
            parts.append(f"{location or 'body'}: {message}")
        kinds = {item["type"] for item in error.errors()}
        error_type = "unsupported_option" if kinds == {"unsupported_option"} else "invalid_request"
        return error_response(422, error_type, "; ".join(parts))

    guarded: dict[str, Any] = {
        # The key is checked by the Guard, before the body is read; the dependency only
        # declares the scheme in the OpenAPI docs.
        "dependencies": [Depends(_BEARER)] if settings.api_key is not None else [],
        "responses": _ERRORS,
        "response_model_exclude_none": True,
    }

    def requested_cut(body: RerankRequest) -> RelevanceCut | None:
        """The request's adaptive cut, or the server's default; 422 on an uncalibrated model."""
        given = body.min_relevance is not None
        try:
            return check_relevance_cut(
                served,
                body.min_relevance if given else settings.min_relevance,
                body.on_no_relevant or settings.on_no_relevant,
            )
        except ValueError:  # the values are checked: only the reranker is refused
            raise RequestError(
                422,
                "uncalibrated",
                "min_relevance needs calibrated probabilities, and this server's reranker is "
                "not calibrated: its operator can fit a calibration (`rerankkit calibrate ... "
                "--output cal.json`) and serve 'SPEC?calibration=cal.json'",
            ) from None

    async def rerank(
        route: str,
        body: RerankRequest,
        texts: list[str],
        max_words: int | None = None,
    ) -> tuple[list[RerankResult], bool | None]:
        """The results, and whether the request abstained (``None`` without a cut)."""
        query, top_n, cut = body.query, body.top_n, requested_cut(body)
        check_limits(query, texts, settings)  # limits apply to what was sent
        if max_words is not None:
            texts = [first_words(text, max_words) for text in texts]
        refused = meter.admit(len(texts))
        if refused is not None:
            seconds = refused.retry_after_s
            raise RequestError(
                503,
                "overloaded",
                f"{refused.reason}; retry after {seconds} s",
                {"Retry-After": str(seconds)},
            )
        scored = timed_out = False
        try:
            metrics.documents.labels(route=route).inc(len(texts))
            results = await within_deadline(
                served.arerank(
                    query,
                    texts,
                    top_n=top_n,
                    min_relevance=cut.min_relevance if cut else None,
                    on_no_relevant=cut.on_no_relevant if cut else "empty",
                ),
                settings.request_timeout_s,
            )
            if results is None:
                metrics.abandoned.labels(reason="deadline").inc()
                timed_out = True
                seconds = meter.retry_after_s()
                raise RequestError(
                    504,
                    "deadline_exceeded",
                    f"not answered within request_timeout_s={settings.request_timeout_s:g} "
                    f"s; its work was dropped; retry after {seconds} s",
                    {"Retry-After": str(seconds)},
                )
            scored = True
            if cut is None:
                return results, None
            return results, not results or bool(results[0].details.get(BELOW_MIN_RELEVANCE_KEY))
        except InvalidTextError as error:  # refused by the core before any batching
            raise RequestError(422, "invalid_text", str(error)) from error
        except RequestError:
            raise
        except Exception as error:
            logger.exception("reranking failed on %s", route)
            raise RequestError(
                500, "reranker_error", f"the reranker failed: {type(error).__name__}: {error}"
            ) from error
        finally:
            meter.done(len(texts), scored=scored, timed_out=timed_out)

    @app.post("/v2/rerank", response_model=CohereV2Response, tags=["Cohere v2"], **guarded)
    async def rerank_v2(body: CohereV2Request) -> CohereV2Response:
        """Cohere v2 rerank (``cohere.ClientV2(base_url=...).rerank(...)``)."""
        results, abstained = await rerank(
            "/v2/rerank", body, body.documents, body.max_tokens_per_doc
        )
        return CohereV2Response(
            results=[
                CohereV2Result(index=r.index, relevance_score=r.score, **below(r)) for r in results
            ],
            abstained=abstained,
        )

    @app.post("/v1/rerank", response_model=V1Response, tags=["Cohere v1 / Jina"], **guarded)
    async def rerank_v1(body: CohereV1Request) -> V1Response:
        """Cohere v1 and Jina rerank: one superset response that both clients read."""
        texts = body.document_texts
        results, abstained = await rerank("/v1/rerank", body, texts)
        with_documents = body.return_documents is not False  # Jina's default: included
        return V1Response(
            model=settings.model_name,
            results=[
                V1Result(
                    index=r.index,
                    relevance_score=r.score,
                    document=DocumentText(text=texts[r.index]) if with_documents else None,
                    **below(r),
                )
                for r in results
            ],
            usage=Usage.of(body.query, texts),
            abstained=abstained,
        )

    @app.post(
        "/rerank",
        response_model=list[TeiResult] | InfinityResponse,
        tags=["TEI / Infinity"],
        **guarded,
    )
    async def rerank_self_hosted(body: SelfHostedRequest) -> list[TeiResult] | InfinityResponse:
        """TEI (``texts`` -> a list) or Infinity (``documents`` -> an object)."""
        texts = body.document_texts
        results, abstained = await rerank("/rerank", body, texts)
        if body.texts is not None:  # TEI's shape: a list ([] when it abstained)
            return [
                TeiResult(
                    index=r.index,
                    score=r.score,
                    text=texts[r.index] if body.return_text else None,
                    **below(r),
                )
                for r in results
            ]
        return InfinityResponse(
            results=[
                InfinityResult(
                    relevance_score=r.score,
                    index=r.index,
                    document=texts[r.index] if body.return_documents else None,
                    **below(r),
                )
                for r in results
            ],
            model=settings.model_name,
            usage=Usage.of(body.query, texts),
            abstained=abstained,
        )

    @app.get("/health", response_model=Health, tags=["Operations"])
    async def health() -> Health:
        """Liveness: the server is up and its reranker loaded."""
        return Health(model=settings.model_name, batching=batcher is not None)

    @app.get("/metrics", tags=["Operations"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition (requests, latency, documents, queue depth)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
