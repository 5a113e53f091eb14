"""``RemoteReranker``: a ``Reranker`` whose scores come from a rerank service over HTTP.

Each service module only declares where to send a chunk and how to read the answer (``path``,
``query_field``, ``documents_field``, ``cut_field``, ``fixed_options``, ``option_names``,
``results_key``, ``score_key``); splitting, concurrency, retries, validation of the answer and
mapping back to the caller's positions live here and in ``_http``/``_merge``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pydantic import SecretStr

from rerankkit._base import Group, Reranker
from rerankkit._ordering import Details
from rerankkit._pickling import RebuiltOnUnpickle
from rerankkit._renamed import refuse_renamed_arguments
from rerankkit._retry import RetryPolicy
from rerankkit._secrets import clean_api_key, secret_from_env
from rerankkit._validation import check_int
from rerankkit.errors import RemoteServiceError
from rerankkit.remote._http import ServiceClient, check_base_url
from rerankkit.remote._merge import AnswerShapeError, scores_by_index


class RemoteReranker(RebuiltOnUnpickle, Reranker):
    """Base of the HTTP clients in ``rerankkit.remote`` (see the package docstring).

    A subclass declares its request and answer shape in class attributes: the request is
    ``{query_field: query, documents_field: documents, "model" (unless None), cut_field (the
    chunk's length), **fixed_options, **options}``, where ``options`` are the attributes named
    in ``option_names`` that are not None; the answer's ``results_key`` list holds
    ``{"index", score_key}`` items. An instance may change its shape (vLLM's ``/score``).

    Connection options, accepted by every client:
        base_url: The service's root URL (default: the service's public endpoint).
        api_key: Sent as ``Authorization: Bearer`` (a ``str`` or ``pydantic.SecretStr``);
            default: the service's environment variable(s) (``api_key_env``), read on
            construction. Surrounding whitespace is stripped (a key read from a file keeps
            its newline); a key an HTTP header cannot carry (non-ASCII, control characters)
            is refused on construction with a ``ValueError`` naming ``api_key`` or the
            variable, never the key. Never logged, never in ``repr``, errors, pickles or
            spec strings (nor escaped or percent-encoded forms of it).
            A service that needs a key and has none fails on the first request
            (``RemoteServiceError`` naming the variable), not on construction, so a copy
            can be rebuilt where the key is not set.
        timeout, max_retries, backoff, max_backoff, max_retry_after, max_concurrency: How
            each request is sent, the fields of :class:`rerankkit.RetryPolicy` (checked
            there): seconds each connect/read/write of an attempt may wait (default 30);
            retries after a connect error, timeout, dropped connection, HTTP 408, 429 or 5xx
            (3), waiting ``Retry-After`` when the service sends one; the first backoff in
            seconds, doubled each retry with full jitter (0.5), capped at ``max_backoff``
            (20); the longest ``Retry-After`` waited for (60 s; a longer one fails at once);
            requests in flight at once (8), over the sync calls of this reranker and over
            its async calls on each event loop (the old spelling ``max_in_flight`` is
            refused, naming ``max_concurrency``).
        max_documents: Documents per request (default: the service's documented limit);
            larger inputs are split, sent concurrently and merged.
        headers: Extra HTTP headers.
        transport, async_transport: httpx transports (tests, proxies).

    Pickling, ``reranker_spec`` and the adapters' ``model_dump``/``to_dict`` keep the
    constructor's arguments **without** ``api_key``, ``transport`` and ``async_transport``
    (see ``rerankkit._pickling``): the copy (another process, a Ray worker, a config file)
    opens its own pools and reads the key from the service's environment variable where it is
    rebuilt, even when the original was given ``api_key=``. The key never travels.

    Example:
        >>> from rerankkit.remote import CohereReranker
        >>> from rerankkit._specs import reranker_spec
        >>> reranker_spec(CohereReranker("rerank-v3.5", api_key="sk-...", timeout=5))
        'cohere:rerank-v3.5?timeout=5'
    """

    service: ClassVar[str] = "remote"
    default_base_url: ClassVar[str | None] = None
    api_key_env: ClassVar[tuple[str, ...]] = ()
    requires_api_key: ClassVar[bool] = False
    document_limit: ClassVar[int] = 1000
    path: str = "/rerank"
    query_field: str = "query"
    documents_field: str = "documents"
    cut_field: str | None = "top_n"
    fixed_options: ClassVar[dict[str, Any]] = {}
    option_names: ClassVar[tuple[str, ...]] = ()
    results_key: str | None = "results"
    score_key: str = "relevance_score"
    not_recorded: ClassVar[frozenset[str]] = frozenset({"api_key", "transport", "async_transport"})

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        refuse_renamed_arguments(kwargs, {"max_in_flight": "max_concurrency"}, where=cls.__name__)
        return super().__new__(cls, *args, **kwargs)

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_retry_after: float = 60.0,
        max_concurrency: int = 8,
        max_documents: int | None = None,
        headers: Mapping[str, str] | None = None,
        transport: Any = None,
        async_transport: Any = None,
    ) -> None:
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ValueError(f"model must be a non-empty str or None, got {model!r}")
        url = base_url if base_url is not None else self.default_base_url
        if url is None:
            raise ValueError(f"{self.service}: base_url is required (the server's address)")
        key = clean_api_key(api_key, "api_key")
        self.model = model
        self.max_documents = check_int(
            self.document_limit if max_documents is None else max_documents,
            "max_documents",
            minimum=1,
        )
        policy = RetryPolicy(
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            max_concurrency=max_concurrency,
        )
        self.client = ServiceClient(
            self.service,
            check_base_url(url),
            api_key=key if key is not None else secret_from_env(self.api_key_env),
            policy=policy,
            headers=headers,
            transport=transport,
            async_transport=async_transport,
        )

    # ---- one chunk -------------------------------------------------------------------------
    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {self.query_field: query, self.documents_field: documents}
        if self.model is not None:
            body["model"] = self.model
        if self.cut_field is not None:  # every score: top_n is applied by us after merging
            body[self.cut_field] = len(documents)
        body.update(self.fixed_options)
        for name in self.option_names:
            value = getattr(self, name)
            if value is not None:  # an option left to the service's default is not sent
                body[name] = value
        return body

    def _check_api_key(self) -> None:
        # Checked here, not on construction: an unpickled or config-built copy on a machine
        # without the variable must build, and fail only when it calls the service.
        if self.requires_api_key and not self.client.has_api_key:
            variables = " or ".join(self.api_key_env)
            raise RemoteServiceError(
                self.service,
                None,
                reason=f"no API key, request not sent: set {variables} or pass api_key=...",
            )

    def _read(self, answer: Any, count: int) -> list[float]:
        try:
            return scores_by_index(
                answer, count, results_key=self.results_key, score_key=self.score_key
            )
        except AnswerShapeError as error:
            text = json.dumps(answer, ensure_ascii=False, default=str)
            raise self.client.error(200, text, reason=f"POST {self.path}: {error}") from None

    def _score_chunk(self, query: str, documents: list[str]) -> list[float]:
        self._check_api_key()
        answer = self.client.post_json(self.path, self._body(query, documents))
        return self._read(answer, len(documents))

    async def _ascore_chunk(self, query: str, documents: list[str]) -> list[float]:
        self._check_api_key()
        answer = await self.client.apost_json(self.path, self._body(query, documents))
        return self._read(answer, len(documents))

    # ---- Reranker hooks -------------------------------------------------------------------
    @property
    def pointwise(self) -> bool:
        """``True``: the services score each (query, document) pair on its own."""
        return True

    def _score(self, query: str, documents: list[str]) -> Sequence[float]:
        return self._score_many_with_details([(query, documents)])[0][0]

    def _score_many_with_details(
        self, groups: list[Group]
    ) -> list[tuple[Sequence[float], Details]]:
        size = self.max_documents
        jobs = [
            (group, start)  # the chunk documents[start : start + size] of groups[group]
            for group, (_, documents) in enumerate(groups)
            for start in range(0, len(documents), size)
        ]

        def run(job: tuple[int, int]) -> list[float]:
            group, start = job
            query, documents = groups[group]
            return self._score_chunk(query, documents[start : start + size])

        if len(jobs) == 1:
            parts = [run(jobs[0])]
        else:
            workers = min(len(jobs), self.client.policy.max_concurrency)
            with ThreadPoolExecutor(workers, thread_name_prefix="rerankkit-remote") as pool:
                try:
                    parts = list(pool.map(run, jobs))
                except BaseException:  # a chunk failed: the others not yet sent never are
                    pool.shutdown(cancel_futures=True)
                    raise
        merged: list[list[float]] = [[] for _ in groups]
        for (group, _), scores in zip(jobs, parts, strict=True):
            merged[group].extend(scores)
        return [(scores, None) for scores in merged]

    async def _ascore_with_details(
        self, query: str, documents: list[str]
    ) -> tuple[Sequence[float], Details]:
        size = self.max_documents
        tasks = [
            asyncio.ensure_future(self._ascore_chunk(query, documents[start : start + size]))
            for start in range(0, len(documents), size)
        ]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [score for part in parts for score in part], None

    # ---- lifecycle and identity -------------------------------------------------------------
    def close(self) -> None:
        """Close the sync connection pool (the reranker reopens one if used again)."""
        self.client.close()

    async def aclose(self) -> None:
        """Close the running loop's async pool and the sync pool."""
        await self.client.aclose()

    def __enter__(self) -> RemoteReranker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RemoteReranker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def cache_key(self) -> str:
        """Equal for two clients of the same service, address, model and request options."""
        body = self._body("", [])
        del body[self.query_field], body[self.documents_field]
        settings = json.dumps(body, sort_keys=True)
        return f"{self.service}:{self.client.base_url}{self.path}:{settings}"

    def __repr__(self) -> str:
        model = f"model={self.model!r}, " if self.model is not None else ""
        return f"{type(self).__name__}({model}base_url={self.client.base_url!r})"
