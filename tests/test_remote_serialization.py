"""Remote rerankers have a spec form without their API key, and a copy rebuilt without the
key builds and fails only when it calls the service.

Checked against a real ``rerankkit serve`` app on 127.0.0.1 (``serve_in_thread`` over the
``keyword:`` reranker; one server demands ``KEY``, one demands nothing): a compressor and a
postprocessor holding a remote reranker round-trip through ``model_dump_json`` /
``model_validate_json``, ``to_dict`` / ``from_dict`` and pickle, rank as the in-process
``KeywordReranker``, and their dumps never contain the key.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, TextNode
from test_remote_clients import DOCS, QUERY  # the request every remote test sends

from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import remote
from rerankkit._specs import build_reranker, reranker_spec
from rerankkit.errors import RemoteServiceError
from rerankkit.serve import ServeSettings, create_app, serve_in_thread
from rerankkit.testing import KeywordReranker

KEY = "sk-test-serial-4b1e-SECRET"
KEY_VARIABLES = ("CO_API_KEY", "COHERE_API_KEY")
LOCAL = KeywordReranker()


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    with serve_in_thread(create_app(LOCAL, ServeSettings(api_key=KEY))) as url:
        yield url


@pytest.fixture(scope="module")
def open_url() -> Iterator[str]:
    with serve_in_thread(create_app(LOCAL, ServeSettings())) as url:
        yield url


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def expected(top_n: int) -> list[tuple[str, float]]:
    return [(DOCS[r.index], r.score) for r in LOCAL.rerank(QUERY, DOCS, top_n=top_n)]


def compressed(compressor: RerankKitCompressor) -> list[tuple[str, float]]:
    out = compressor.compress_documents([Document(page_content=text) for text in DOCS], QUERY)
    return [(d.page_content, d.metadata["relevance_score"]) for d in out]


def postprocessed(post: RerankKitPostprocessor) -> list[tuple[str, float]]:
    nodes = [NodeWithScore(node=TextNode(text=text), score=0.0) for text in DOCS]
    return [
        (n.node.get_content(), n.score or 0.0)
        for n in post.postprocess_nodes(nodes, query_str=QUERY)
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda url: f"cohere:rerank-v3.5?base_url={url}&api_key={KEY}",
        lambda url: remote.CohereReranker("rerank-v3.5", base_url=url, api_key=KEY, timeout=5),
    ],
    ids=["spec-with-api_key", "object-with-api_key"],
)
def test_compressor_json_round_trip_drops_the_key(
    keyed_url: str, no_key: pytest.MonkeyPatch, make: object
) -> None:
    compressor = RerankKitCompressor(reranker=make(keyed_url), top_n=2)  # type: ignore[operator]
    assert compressed(compressor) == expected(2)  # the key given as an argument works
    dumped = compressor.model_dump_json()
    assert KEY not in dumped
    assert json.loads(dumped)["reranker"].startswith("cohere:rerank-v3.5?")

    keyless = RerankKitCompressor.model_validate_json(dumped)  # builds without the variable
    with pytest.raises(RemoteServiceError, match=r"CO_API_KEY.*api_key") as caught:
        keyless.reranker.rerank(QUERY, DOCS)
    assert caught.value.status is None  # refused before sending: no request reached the server

    no_key.setenv("CO_API_KEY", KEY)  # the copy reads the service's documented variable
    copy = RerankKitCompressor.model_validate_json(dumped)
    assert copy.model_dump_json() == dumped
    assert compressed(copy) == expected(2)


def test_postprocessor_dict_and_json_round_trips_drop_the_key(open_url: str) -> None:
    post = RerankKitPostprocessor(
        reranker=remote.TEIReranker(open_url, api_key=KEY, max_documents=2), top_n=3
    )
    data = post.to_dict()
    assert data["reranker"] == f"tei:{open_url}?max_documents=2"
    assert KEY not in json.dumps(data) and KEY not in post.to_json()
    assert KEY not in post.model_dump_json()
    copies = [
        RerankKitPostprocessor.from_dict(data),
        RerankKitPostprocessor.from_json(post.to_json()),
    ]
    for copy in copies:
        assert copy.reranker.max_documents == 2  # type: ignore[attr-defined]
        assert postprocessed(copy) == postprocessed(post) == expected(3)


def test_pickles_without_the_variable_and_the_first_call_names_it(
    keyed_url: str, no_key: pytest.MonkeyPatch
) -> None:
    cohere = remote.CohereReranker("rerank-v3.5", base_url=keyed_url, api_key=KEY)
    data = pickle.dumps(RerankKitCompressor(reranker=cohere, top_n=2))
    assert KEY.encode() not in data
    copy = pickle.loads(data)  # a Ray worker or another process without CO_API_KEY
    assert copy.reranker.rerank(QUERY, []) == []  # nothing to send: no error
    with pytest.raises(RemoteServiceError, match=r"no API key.*CO_API_KEY.*api_key") as caught:
        copy.reranker.rerank(QUERY, DOCS)
    assert KEY not in str(caught.value) and caught.value.service == "cohere"
    no_key.setenv("COHERE_API_KEY", KEY)
    assert compressed(pickle.loads(data)) == expected(2)


@pytest.mark.parametrize(
    "reranker",
    [
        remote.CohereReranker(api_key=KEY),
        remote.CohereReranker(
            "m", base_url="http://127.0.0.1:1", api_key=KEY, max_tokens_per_doc=64
        ),
        remote.CohereV1Reranker("m", api_key=KEY, max_retries=1),
        remote.JinaReranker(api_key=KEY),
        remote.VoyageReranker("rerank-2.5", truncation=False, api_key=KEY),
        remote.MixedbreadReranker(api_key=KEY, max_concurrency=2),
        remote.TEIReranker("http://127.0.0.1:1/prefix", raw_scores=True, api_key=KEY),
        remote.VLLMReranker("http://127.0.0.1:1", model="bge", endpoint="score", api_key=KEY),
        remote.InfinityReranker("http://127.0.0.1:1", model=None, backoff=0.25),
    ],
    ids=lambda r: type(r).__name__,
)
def test_every_remote_class_has_a_spec_without_its_key(reranker: remote.RemoteReranker) -> None:
    spec = reranker_spec(reranker)
    assert KEY not in spec and "api_key" not in spec
    rebuilt = build_reranker(spec)
    assert type(rebuilt) is type(reranker)
    assert reranker_spec(rebuilt) == spec and rebuilt.cache_key == reranker.cache_key
    assert rebuilt.max_documents == reranker.max_documents
    assert rebuilt.client.policy == reranker.client.policy


def test_options_without_a_spec_form_are_named() -> None:
    with pytest.raises(TypeError, match="headers="):
        reranker_spec(remote.TEIReranker("http://127.0.0.1:1", headers={"X-Trace": "1"}))
