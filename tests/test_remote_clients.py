"""Every remote client against a real HTTP server on 127.0.0.1 (``fault_server.FaultServer``).

Checked for each service: the request it sends (path, fields, Authorization), that its ranking
equals the in-process ranking of the same scores (sync and async), splitting to the
per-request limit with results mapped back, spec strings, API keys from the environment, and
use through both adapters, fusion, a cascade and the ``rerankkit rerank`` command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_server import FaultServer, fault_server_fixture, fresh_fixture, score_pair  # noqa: F401 (fixtures)

from rerankkit import CascadeReranker, FusionReranker
from rerankkit._specs import build_reranker
from rerankkit.errors import RemoteServiceError
from rerankkit.remote import (
    CohereReranker,
    CohereV1Reranker,
    InfinityReranker,
    JinaReranker,
    MixedbreadReranker,
    RemoteReranker,
    TEIReranker,
    VLLMReranker,
    VoyageReranker,
)
from rerankkit.testing import FunctionReranker, KeywordReranker

KEY = "sk-test-7f3a9c-SECRET"
QUERY = "capital of France"
DOCS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "France is famous for cheese.",
    "The Eiffel tower.",
    "capital",
]

Factory = Callable[[str], RemoteReranker]


def hosted(cls: type[RemoteReranker], model: str) -> Factory:
    """A hosted API's client of ``model``, pointed at the test server."""
    return lambda url: cls(model, base_url=url, api_key=KEY)  # type: ignore[call-arg]


def self_hosted(cls: type[RemoteReranker], **options: Any) -> Factory:
    """A self-hosted server's client (the URL is its first argument)."""
    return lambda url: cls(url, api_key=KEY, **options)  # type: ignore[call-arg]


# name -> (factory(url), path it must POST to, the field holding the documents)
CLIENTS: dict[str, tuple[Factory, str, str]] = {
    "cohere": (hosted(CohereReranker, "rerank-v3.5"), "/v2/rerank", "documents"),
    "cohere-v1": (hosted(CohereV1Reranker, "rerank-english-v3.0"), "/v1/rerank", "documents"),
    "jina": (hosted(JinaReranker, "jina-reranker-v2"), "/v1/rerank", "documents"),
    "voyage": (hosted(VoyageReranker, "rerank-2.5"), "/v1/rerank", "documents"),
    "mixedbread": (hosted(MixedbreadReranker, "mxbai-rerank-large-v2"), "/v1/reranking", "input"),
    "tei": (self_hosted(TEIReranker), "/rerank", "texts"),
    "vllm-rerank": (self_hosted(VLLMReranker, model="bge"), "/v1/rerank", "documents"),
    "vllm-score": (self_hosted(VLLMReranker, model="bge", endpoint="score"), "/score", "text_2"),
    "infinity": (self_hosted(InfinityReranker, model="bge"), "/rerank", "documents"),
}
REFERENCE = FunctionReranker(score_pair)


@pytest.mark.parametrize("name", CLIENTS)
def test_ranking_and_request_shape(fresh: FaultServer, name: str) -> None:
    factory, path, field = CLIENTS[name]
    with factory(fresh.url) as reranker:
        got = reranker.rerank(QUERY, DOCS, top_n=3)
        scores = reranker.score(QUERY, DOCS)
    assert got == REFERENCE.rerank(QUERY, DOCS, top_n=3)
    assert scores == REFERENCE.score(QUERY, DOCS)
    seen = fresh.seen[0]
    assert seen.path == path
    assert seen.body[field] == DOCS
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    cut = seen.body.get("top_n", seen.body.get("top_k", len(DOCS)))
    assert cut == len(DOCS)  # every score is asked for; top_n is applied after merging


@pytest.mark.parametrize("name", CLIENTS)
async def test_async_ranking(fresh: FaultServer, name: str) -> None:
    factory, _, _ = CLIENTS[name]
    async with factory(fresh.url) as reranker:
        got = await reranker.arerank(QUERY, DOCS, top_n=2, score_threshold=1.0)
    assert got == REFERENCE.rerank(QUERY, DOCS, top_n=2, score_threshold=1.0)


def test_request_options(fresh: FaultServer) -> None:
    with CohereReranker(
        "rerank-v3.5", base_url=fresh.url, api_key=KEY, max_tokens_per_doc=512
    ) as r:
        r.rerank(QUERY, DOCS)
    with TEIReranker(fresh.url, raw_scores=True, truncate=True) as t:
        t.rerank(QUERY, DOCS)
    with VoyageReranker("rerank-2.5", base_url=fresh.url, api_key=KEY, truncation=False) as v:
        v.rerank(QUERY, DOCS)
    cohere, tei, voyage = (seen.body for seen in fresh.seen)
    assert cohere == {
        "model": "rerank-v3.5",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 5,
        "max_tokens_per_doc": 512,
    }
    assert tei == {
        "query": QUERY,
        "texts": DOCS,
        "raw_scores": True,
        "return_text": False,
        "truncate": True,
    }
    assert voyage["truncation"] is False and voyage["top_k"] == 5
    assert "Authorization" not in fresh.seen[1].headers  # TEI without a key sends none


MANY = [f"{'capital ' * (i % 4)}France {'x' * i}" for i in range(70)]


@pytest.mark.parametrize("name", ["tei", "cohere", "mixedbread"])
def test_split_to_the_limit_maps_back(fresh: FaultServer, name: str) -> None:
    factory, _, field = CLIENTS[name]
    reranker = factory(fresh.url)
    reranker.max_documents = 32 if name == "tei" else 16  # TEI's default; 16 to split others
    with reranker:
        got = reranker.rerank(QUERY, MANY)
    assert got == REFERENCE.rerank(QUERY, MANY)
    sent = sorted((seen.body[field] for seen in fresh.seen), key=lambda docs: MANY.index(docs[0]))
    assert [len(docs) for docs in sent] == ([32, 32, 6] if name == "tei" else [16] * 4 + [6])
    assert [doc for docs in sent for doc in docs] == MANY  # each document sent exactly once


async def test_split_async_and_score_many(fresh: FaultServer) -> None:
    async with TEIReranker(fresh.url, max_documents=7) as reranker:
        got = await reranker.arerank(QUERY, MANY, top_n=10)
        assert got == REFERENCE.rerank(QUERY, MANY, top_n=10)
        groups = [(QUERY, MANY[:20]), ("cheese", []), ("France x", MANY[20:])]
        assert reranker.score_many(groups) == REFERENCE.score_many(groups)
    assert len(fresh.seen) == 10 + 3 + 8  # ceil(70/7) + ceil(20/7) + ceil(50/7)


def test_spec_strings(fresh: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CO_API_KEY", KEY)
    specs = {
        f"cohere:rerank-v3.5?base_url={fresh.url}": CohereReranker,
        f"cohere-v1:rerank-english-v3.0?base_url={fresh.url}": CohereV1Reranker,
        f"jina:jina-m?base_url={fresh.url}&api_key={KEY}": JinaReranker,
        f"voyage:rerank-2.5?base_url={fresh.url}&api_key={KEY}": VoyageReranker,
        f"mixedbread:mxbai?base_url={fresh.url}&api_key={KEY}": MixedbreadReranker,
        f"tei:{fresh.url}?max_documents=2&timeout=5&max_retries=1": TEIReranker,
        f"vllm:{fresh.url}?model=bge&endpoint=score": VLLMReranker,
        f"infinity:{fresh.url}?model=bge&raw_scores=true": InfinityReranker,
    }
    for spec, cls in specs.items():
        reranker = build_reranker(spec)
        assert type(reranker) is cls
        with reranker:
            assert reranker.rerank(QUERY, DOCS) == REFERENCE.rerank(QUERY, DOCS), spec
    assert all(seen.headers.get("Authorization") == f"Bearer {KEY}" for seen in fresh.seen[:2])


def test_api_key_from_environment(fresh: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CO_API_KEY", "COHERE_API_KEY", "JINA_API_KEY", "VOYAGE_API_KEY", "MXBAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for cls, variable in [
        (CohereReranker, "CO_API_KEY"),
        (JinaReranker, "JINA_API_KEY"),
        (VoyageReranker, "VOYAGE_API_KEY"),
        (MixedbreadReranker, "MXBAI_API_KEY"),
    ]:
        sent = len(fresh.seen)
        with cls(base_url=fresh.url) as keyless:  # builds: the key is checked per request
            with pytest.raises(RemoteServiceError, match=f"{variable}.*api_key"):
                keyless.rerank(QUERY, DOCS)
            with pytest.raises(RemoteServiceError, match=variable):
                asyncio.run(keyless.arerank(QUERY, DOCS))
        assert len(fresh.seen) == sent  # refused before sending
        monkeypatch.setenv(variable, f"{KEY}-{variable}")
        with cls(base_url=fresh.url) as reranker:
            reranker.rerank(QUERY, DOCS)
        assert fresh.seen[-1].headers["Authorization"] == f"Bearer {KEY}-{variable}"
    monkeypatch.delenv("CO_API_KEY")
    monkeypatch.setenv("COHERE_API_KEY", "other")  # the SDK's second name
    with CohereReranker(base_url=fresh.url) as reranker:
        reranker.rerank(QUERY, DOCS)
    assert fresh.seen[-1].headers["Authorization"] == "Bearer other"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base_url"):
        TEIReranker("localhost:8080")
    with pytest.raises(ValueError, match="credentials"):
        TEIReranker("http://user:pw@127.0.0.1:8080")
    with pytest.raises(ValueError, match="max_documents"):
        TEIReranker("http://127.0.0.1:8080", max_documents=0)
    with pytest.raises(ValueError, match="timeout"):
        TEIReranker("http://127.0.0.1:8080", timeout=0)
    with pytest.raises(ValueError, match="endpoint"):
        VLLMReranker("http://127.0.0.1:8000", endpoint="embed")
    with pytest.raises(TypeError, match="unexpected keyword"):
        TEIReranker("http://127.0.0.1:8080", retries=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^TEIReranker: max_in_flight was renamed max_concurrency"):
        TEIReranker("http://127.0.0.1:8080", max_in_flight=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="api_key must be a str"):
        TEIReranker("http://127.0.0.1:8080", api_key=123)  # type: ignore[arg-type]
    assert TEIReranker("http://127.0.0.1:8080").rerank(QUERY, []) == []  # no request


def test_cache_key_and_pointwise(fresh: FaultServer) -> None:
    a, b = TEIReranker(fresh.url), TEIReranker(fresh.url + "/")
    assert a.cache_key == b.cache_key != TEIReranker(fresh.url, raw_scores=True).cache_key
    assert a.pointwise


# ---- a normal Reranker everywhere ----------------------------------------------------------------
def test_in_fusion_and_cascade(fresh: FaultServer) -> None:
    with TEIReranker(fresh.url) as remote:
        fused = FusionReranker([remote, KeywordReranker()]).rerank(QUERY, DOCS)
        expected = FusionReranker([REFERENCE, KeywordReranker()]).rerank(QUERY, DOCS)
        assert [r.index for r in fused] == [r.index for r in expected]
        cascade = CascadeReranker([(KeywordReranker(), 3), (remote, None)])
        reference = CascadeReranker([(KeywordReranker(), 3), (REFERENCE, None)])
        assert cascade.rerank(QUERY, DOCS) == reference.rerank(QUERY, DOCS)


def test_in_langchain_and_llamaindex(fresh: FaultServer) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_rerankkit import RerankKitCompressor
    from llamaindex_rerankkit import RerankKitPostprocessor

    with CohereReranker("rerank-v3.5", base_url=fresh.url, api_key=KEY) as remote:
        compressed = RerankKitCompressor(reranker=remote, top_n=2).compress_documents(
            [Document(page_content=text) for text in DOCS], QUERY
        )
        nodes = RerankKitPostprocessor(reranker=remote, top_n=2).postprocess_nodes(
            [NodeWithScore(node=TextNode(text=text), score=0.0) for text in DOCS],
            QueryBundle(QUERY),
        )
    best = [DOCS[r.index] for r in REFERENCE.rerank(QUERY, DOCS, top_n=2)]
    assert [d.page_content for d in compressed] == best
    assert [n.node.get_content() for n in nodes] == best
    assert compressed[0].metadata["relevance_score"] == pytest.approx(score_pair(QUERY, best[0]))


def test_cli_rerank_with_a_remote_spec(fresh: FaultServer, tmp_path: Path, capsys: Any) -> None:
    from rerankkit.cli._commands import main

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(text) + "\n" for text in DOCS))
    argv = ["rerank", "--query", QUERY, "--docs", str(docs), "--top-n", "2"]
    assert main([*argv, "--reranker", f"tei:{fresh.url}"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    best = REFERENCE.rerank(QUERY, DOCS, top_n=2)
    assert [line["index"] for line in lines] == [r.index for r in best]


def test_in_rerankkit_eval(fresh: FaultServer, tmp_path: Path) -> None:
    """A remote spec in ``rerankkit eval``: its run equals the in-process run of the same
    scores, and the command writes its report."""
    from rerankkit.cli._commands import main
    from rerankkit.eval._datasets import load_beir, load_trec_run
    from rerankkit.eval._runs import rerank_run

    (tmp_path / "qrels").mkdir()
    corpus = {f"d{i}": text for i, text in enumerate(DOCS)}
    queries = {"q1": QUERY, "q2": "cheese France"}
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in corpus.items())
    )
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items())
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"
    )
    run_file = tmp_path / "run.trec"
    run_file.write_text(
        "".join(f"{q} Q0 d{i} {i + 1} {10 - i} bm25\n" for q in queries for i in range(len(DOCS)))
    )
    dataset, first_stage = load_beir(tmp_path), load_trec_run(run_file)
    with TEIReranker(fresh.url, max_documents=2) as remote:
        got, _ = rerank_run(remote, dataset, first_stage)
    expected, _ = rerank_run(REFERENCE, dataset, first_stage)
    assert got == expected
    argv = ["eval", "--data", str(tmp_path), "--run", str(run_file), "--output", str(tmp_path)]
    assert main([*argv, "--reranker", f"tei:{fresh.url}"]) == 0
    assert "tei" in (tmp_path / "report.md").read_text()


def test_pickles_without_the_key(fresh: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy (another process, a Ray worker) keeps the settings and reads the key from the
    environment there; the key is never in the pickle."""
    import pickle

    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with TEIReranker(fresh.url, max_documents=2, raw_scores=True, api_key=KEY) as tei:
        tei.rerank(QUERY, DOCS)  # pools opened before pickling
        data = pickle.dumps(tei)
    assert KEY.encode() not in data
    with pickle.loads(data) as copy:
        assert (copy.max_documents, copy.raw_scores) == (2, True)
        assert copy.rerank(QUERY, DOCS) == REFERENCE.rerank(QUERY, DOCS)
    assert "Authorization" not in fresh.seen[-1].headers
    cohere_data = pickle.dumps(CohereReranker("rerank-v3.5", base_url=fresh.url, api_key=KEY))
    assert KEY.encode() not in cohere_data
    keyless = pickle.loads(cohere_data)  # builds without the variable ...
    with keyless, pytest.raises(RemoteServiceError, match="CO_API_KEY"):
        keyless.rerank(QUERY, DOCS)  # ... and fails when it would call the service
    monkeypatch.setenv("CO_API_KEY", KEY)
    with pickle.loads(cohere_data) as copy:
        copy.rerank(QUERY, DOCS)
    assert fresh.seen[-1].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("name", CLIENTS)
def test_text_that_is_not_valid_unicode_is_refused_before_sending(
    fresh: FaultServer, name: str
) -> None:
    # A lone surrogate (PDF extraction) used to reach the encoder as a raw UnicodeEncodeError
    # (issue 25, item 2): the core's boundary refuses it, naming the document and offset.
    from rerankkit.errors import InvalidTextError

    factory, _, _ = CLIENTS[name]
    with factory(fresh.url) as reranker, pytest.raises(InvalidTextError) as caught:
        reranker.rerank(QUERY, [DOCS[0], "\ud835 Paris is the capital"])
    assert str(caught.value) == (
        "documents[1] is not valid Unicode: lone surrogate U+D835 at character 0"
    )
    assert fresh.seen == []  # nothing sent, so nothing retried
