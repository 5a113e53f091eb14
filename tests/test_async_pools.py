"""Issue 25, kind 5: an async pool per event loop, released with its loop.

Flask views and Celery tasks call ``asyncio.run(reranker.arerank(...))`` per request: each run
is a new loop, and an httpx async pool is bound to the loop it ran on. Each pool used to stay
open after its loop was closed (40 calls: 40 clients, 40 sockets, 40 dead loops). Counted here
from the operating system (this process's TCP connections to the server) and from the live
``httpx.AsyncClient`` objects.
"""

from __future__ import annotations

import asyncio
import gc

import httpx
import psutil
import pytest
from fault_server import FaultServer, fault_server_fixture, fresh_fixture  # noqa: F401 (fixtures)

from rerankkit.remote import CohereReranker

QUERY = "capital of France"
DOCS = ["Berlin is the capital of Germany.", "Paris is the capital of France."]


def open_sockets(server: FaultServer) -> int:
    """This process's established TCP connections to ``server``."""
    port = httpx.URL(server.url).port
    return sum(
        1
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.raddr
        and connection.raddr.port == port
        and connection.status == psutil.CONN_ESTABLISHED
    )


def open_async_clients() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, httpx.AsyncClient) and not o.is_closed)


def test_asyncio_run_per_request_leaves_no_client_socket_or_loop(fresh: FaultServer) -> None:
    reranker = CohereReranker("rerank-v3.5", base_url=fresh.url, api_key="sk-test")
    before = open_async_clients()
    for _ in range(40):
        results = asyncio.run(reranker.arerank(QUERY, DOCS))
        assert results[0].index == 1
        assert open_sockets(fresh) == 0
    assert len(fresh.seen) == 40
    assert len(reranker.client._loops) == 0  # no pool, no loop kept
    assert open_async_clients() == before

    for _ in range(40):  # the sync path: one pooled connection, reused
        reranker.rerank(QUERY, DOCS)
    assert open_sockets(fresh) == 1
    reranker.close()
    assert open_sockets(fresh) == 0


def test_one_loop_keeps_one_pool_until_it_ends(fresh: FaultServer) -> None:
    reranker = CohereReranker("rerank-v3.5", base_url=fresh.url, api_key="sk-test")

    async def serve_many() -> tuple[int, int]:
        clients = set()
        for _ in range(10):
            await reranker.arerank(QUERY, DOCS)
            clients.add(id(reranker.client._loops[asyncio.get_running_loop()].client))
        return len(clients), open_sockets(fresh)

    assert asyncio.run(serve_many()) == (1, 1)  # a long-lived loop reuses its pool
    assert open_sockets(fresh) == 0 and len(reranker.client._loops) == 0

    async def closed_early() -> int:
        async with reranker:  # explicit aclose still works, and the loop's end is then a no-op
            await reranker.arerank(QUERY, DOCS)
        return len(reranker.client._loops)

    assert asyncio.run(closed_early()) == 0
    assert open_sockets(fresh) == 0


@pytest.mark.parametrize("calls", [3])
def test_concurrent_calls_on_a_fresh_loop_share_its_pool(fresh: FaultServer, calls: int) -> None:
    reranker = CohereReranker("rerank-v3.5", base_url=fresh.url, api_key="sk-test")

    async def together() -> list[int]:
        answers = await asyncio.gather(*(reranker.arerank(QUERY, DOCS) for _ in range(calls)))
        return [answer[0].index for answer in answers]

    assert asyncio.run(together()) == [1] * calls
    assert open_async_clients() == 0 and open_sockets(fresh) == 0
