"""The remote clients against ``rerankkit serve`` (``create_app`` under uvicorn on 127.0.0.1):
every wire shape the server speaks, compared with the in-process ranking of the trained test
cross-encoder; plus its API key, its 413 limit (split by the client to fit) and its bounded
queue (503 + ``Retry-After``, retried by the client until every request is answered).

Voyage, Mixedbread and vLLM's ``/score`` shapes are not served by ``rerankkit serve``; those
clients are tested against ``tests/fault_server.py`` (test_remote_clients.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import TRAINED_CE, requires_shared
from rerankkit import CrossEncoderReranker, RerankResult
from rerankkit.errors import RemoteServiceError
from rerankkit.remote import (
    CohereReranker,
    CohereV1Reranker,
    InfinityReranker,
    JinaReranker,
    RemoteReranker,
    TEIReranker,
    VLLMReranker,
)
from rerankkit.serve import ServeSettings, create_app, serve_in_thread
from rerankkit.testing import FunctionReranker

pytestmark = [pytest.mark.slow, requires_shared]

KEY = "serve-key-5d1e0b-SECRET"
QUERY = "what is the capital of france"
DOCS = [
    "Berlin is the capital and largest city of Germany.",
    "Paris is the capital and most populous city of France.",
    "France is famous for its wine and cheese.",
    "The Eiffel Tower is in Paris.",
    "Lyon is the third-largest city in France.",
    "Madrid is the capital of Spain.",
    "The capital of France has been Paris since the 10th century.",
]

CLIENTS: dict[str, Callable[[str], RemoteReranker]] = {
    "cohere-v2": lambda url: CohereReranker("served", base_url=url, api_key=KEY),
    "cohere-v1": lambda url: CohereV1Reranker("served", base_url=url, api_key=KEY),
    "jina": lambda url: JinaReranker("served", base_url=url, api_key=KEY),
    "tei": lambda url: TEIReranker(url, api_key=KEY),
    "infinity": lambda url: InfinityReranker(url, model="served", api_key=KEY),
    "vllm-rerank": lambda url: VLLMReranker(url, model="served", api_key=KEY),
}


@pytest.fixture(scope="module")
def local() -> CrossEncoderReranker:
    return CrossEncoderReranker(str(TRAINED_CE))


@pytest.fixture(scope="module")
def served(local: CrossEncoderReranker) -> Iterator[str]:
    settings = ServeSettings(api_key=KEY, max_documents=5)
    with serve_in_thread(create_app(local, settings)) as url:
        yield url


def same_ranking(got: list[RerankResult], expected: list[RerankResult]) -> None:
    assert [r.index for r in got] == [r.index for r in expected]
    assert [r.score for r in got] == pytest.approx([r.score for r in expected], abs=1e-5)


@pytest.mark.parametrize("name", CLIENTS)
def test_each_wire_shape_ranks_as_in_process(
    served: str, local: CrossEncoderReranker, name: str
) -> None:
    """7 documents against a server limit of 5: the client must split (max_documents=5)."""
    reranker = CLIENTS[name](served)
    reranker.max_documents = 5
    with reranker:
        same_ranking(reranker.rerank(QUERY, DOCS, top_n=4), local.rerank(QUERY, DOCS, top_n=4))


@pytest.mark.parametrize("name", CLIENTS)
async def test_each_wire_shape_async(served: str, local: CrossEncoderReranker, name: str) -> None:
    reranker = CLIENTS[name](served)
    reranker.max_documents = 3
    async with reranker:
        got = await reranker.arerank(QUERY, DOCS)
    same_ranking(got, local.rerank(QUERY, DOCS))


def test_server_limits_and_key_are_clear_errors(served: str) -> None:
    too_many = TEIReranker(served, api_key=KEY, max_documents=10)
    with too_many, pytest.raises(RemoteServiceError) as caught:
        too_many.rerank(QUERY, DOCS)  # 7 > the server's 5: 413, not retried
    assert caught.value.status == 413
    wrong = CohereReranker("served", base_url=served, api_key="wrong")
    with wrong, pytest.raises(RemoteServiceError) as unauthorized:
        wrong.rerank(QUERY, DOCS[:2])
    assert unauthorized.value.status == 401 and KEY not in str(unauthorized.value)


def test_backpressure_is_retried_until_every_request_is_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server admitting 1 request at a time answers the others 503 + Retry-After: 1; the
    clients wait and resend until all 4 concurrent requests get their full ranking."""

    def slow_keyword(query: str, document: str) -> float:
        time.sleep(0.02)
        return float(sum(word in document.lower() for word in query.split()))

    reference = FunctionReranker(slow_keyword)
    settings = ServeSettings(max_queue=1, batching=False, retry_after_s=1)
    with serve_in_thread(create_app(reference, settings)) as url:

        async def one(client: TEIReranker, i: int) -> list[RerankResult]:
            return await client.arerank(QUERY, DOCS[i:] + DOCS[:i])

        async def run() -> list[Any]:
            async with TEIReranker(url, max_retries=8, backoff=0.01) as client:
                return list(await asyncio.gather(*(one(client, i) for i in range(4))))

        with caplog.at_level(logging.WARNING, logger="rerankkit.remote._http"):
            answers = asyncio.run(run())
    assert "HTTP 503" in caplog.text and "in 1.00 s" in caplog.text  # it did push back
    for i, got in enumerate(answers):
        docs = DOCS[i:] + DOCS[:i]
        assert got == reference.rerank(QUERY, docs)  # every document, once, in order
