"""Issue 11, kind 2: every value a user receives is finite and JSON-strict.

A failed pointwise LLM call scored ``-inf`` and a NaN from any backend became ``-inf``; both
reached ``metadata["relevance_score"]`` / ``node.score``, so ``json.dumps(allow_nan=False)``
(what FastAPI/Starlette do) raised and LlamaIndex's ``model_dump_json()`` wrote ``null``. Now
a document that was not judged still ranks last and is flagged ``rerank_failed`` with a
``rerank_error``, unlike a genuinely irrelevant document; ``score()`` gives it ``LOWEST_SCORE``
(-1e30) and a rerank result the lowest judged score of the call (issue 27: -1e30 wrecked
averages in metadata, node scores and the serve API).
Every place a failure can occur is exercised below with scripted fakes that fail (and, marked
slow, real tiny models whose weights are NaN).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from rerankkit import (
    CachedReranker,
    CascadeReranker,
    FusionReranker,
    LLMListwiseReranker,
    LLMPointwiseReranker,
    RerankResult,
    result_metadata,
)
from rerankkit._result import LOWEST_SCORE
from rerankkit.cli._commands import main
from rerankkit.eval._calibration import score_distribution
from rerankkit.eval._datasets import Dataset
from rerankkit.eval._metrics import evaluate
from rerankkit.eval._report import EvalReport, SystemResult
from rerankkit.eval._runs import Timing
from rerankkit.testing import FunctionReranker, KeywordReranker, ScriptedLLM

NAN = math.nan


def _refuse(constant: str) -> Any:
    raise AssertionError(f"not strict JSON: {constant}")


def strict_loads(text: str) -> Any:
    """``json.loads`` that fails on NaN/Infinity instead of reading them."""
    return json.loads(text, parse_constant=_refuse)


def strict_round_trip(value: Any) -> Any:
    return strict_loads(json.dumps(value, allow_nan=False))


def _rows(results: list[RerankResult]) -> list[dict[str, Any]]:
    return strict_round_trip([{"index": r.index, **result_metadata(r)} for r in results])


def failing_pointwise() -> LLMPointwiseReranker:
    """Four documents, answered in order: yes, a call that fails, no, an unparseable answer."""
    llm = ScriptedLLM(["yes", TimeoutError("provider down"), "no", "I would rather not say"])
    return LLMPointwiseReranker(llm, max_concurrency=1, max_retries=0)


DOCS = ["a", "b", "c", "d"]
# Written by hand from the script above: yes=1.0, no=0.0, the two failures last in input order,
# scored the lowest judged score (no's 0.0).
EXPECTED = [
    {"index": 0, "relevance_score": 1.0, "llm_answer": "yes"},
    {"index": 2, "relevance_score": 0.0, "llm_answer": "no"},
    {
        "index": 1,
        "relevance_score": 0.0,
        "rerank_failed": True,
        "rerank_error": "TimeoutError: provider down",
    },
    {
        "index": 3,
        "relevance_score": 0.0,
        "llm_answer": "I would rather not say",
        "rerank_failed": True,
        "rerank_error": "unparseable answer",
    },
]


def test_failed_pointwise_llm_calls_are_finite_flagged_and_last() -> None:
    assert _rows(failing_pointwise().rerank("q", DOCS)) == EXPECTED
    assert _rows(asyncio.run(failing_pointwise().arerank("q", DOCS))) == EXPECTED
    assert strict_round_trip(failing_pointwise().score("q", DOCS)) == [1.0, -1e30, 0.0, -1e30]


def test_an_explicit_failure_score_is_kept_and_still_flagged() -> None:
    llm = ScriptedLLM([TimeoutError("down"), "no"])
    reranker = LLMPointwiseReranker(llm, max_concurrency=1, max_retries=0, failure_score=0.5)
    results = reranker.rerank("q", ["a", "b"])
    assert [(r.index, r.score, r.details.get("rerank_failed")) for r in results] == [
        (0, 0.5, True),
        (1, 0.0, None),
    ]
    for bad in (math.inf, -math.inf, NAN):
        with pytest.raises(ValueError, match="failure_score must be a finite number"):
            LLMPointwiseReranker(llm, failure_score=bad)


def test_nan_and_infinite_backend_scores() -> None:
    scores = {"nan": NAN, "up": math.inf, "down": -math.inf, "ok": 0.5, "huge": -1e40}
    reranker = FunctionReranker(lambda q, d: scores[d])
    rows = _rows(reranker.rerank("q", list(scores)))
    # +inf is clipped to 1e30, -inf and -1e40 to -1e30 (judged, so ahead of the NaN)
    assert rows == [
        {"index": 1, "relevance_score": 1e30},
        {"index": 3, "relevance_score": 0.5},
        {"index": 2, "relevance_score": -1e30},
        {"index": 4, "relevance_score": -1e30},
        {
            "index": 0,
            "relevance_score": -1e30,
            "rerank_failed": True,
            "rerank_error": "the model returned NaN",
        },
    ]
    assert reranker.score_many([("q", ["nan", "ok"])]) == [[-1e30, 0.5]]


def test_a_failed_listwise_window_keeps_its_order_and_says_so() -> None:
    llm = ScriptedLLM([TimeoutError("slow")])
    results = LLMListwiseReranker(llm, max_retries=0).rerank("q", ["a", "b", "c"])
    assert _rows(results) == [
        {
            "index": i,
            "relevance_score": 1 / (i + 1),
            "llm_window_errors": ["window 1-3: TimeoutError: slow"],
        }
        for i in range(3)
    ]


def test_fusion_leaves_a_failed_document_out_and_flags_it() -> None:
    nan_for_b = FunctionReranker(lambda q, d: NAN if d.startswith("b") else float(len(d)))
    fused = FusionReranker([nan_for_b, KeywordReranker()])
    rows = _rows(fused.rerank("cat", ["cat", "b cat", "dog"]))
    # RRF (k=60) over the two judged documents only: "cat" is first in both rankings
    # (3 vs 3, a tie kept in input order; keyword 1 vs 0), "dog" second in both.
    assert rows == [
        {"index": 0, "relevance_score": 2 / 61, "fusion_scores": [3.0, 1.0]},
        {"index": 2, "relevance_score": 2 / 62, "fusion_scores": [3.0, 0.0]},
        {
            "index": 1,
            "relevance_score": 2 / 62,  # the lowest judged (fused) score
            "fusion_scores": [-1e30, 1.0],
            "rerank_error": "rerankers[0]: the model returned NaN",
            "rerank_failed": True,
        },
    ]
    by_score = FusionReranker([nan_for_b, KeywordReranker()], method="score")
    # min-max over "cat" and "dog" only: stage 0 [3, 3] -> [1, 1]; keyword [1, 0] -> [1, 0]
    assert by_score.score("cat", ["cat", "b cat", "dog"]) == [2.0, -1e30, 1.0]


def test_cascade_flags_describe_the_final_score() -> None:
    nan_for_b = FunctionReranker(lambda q, d: NAN if d.startswith("b") else 1.0)
    rescued = CascadeReranker([(nan_for_b, None), (KeywordReranker(), None)])
    rows = _rows(rescued.rerank("cat", ["cat", "b cat"]))
    assert rows == [
        {"index": 0, "relevance_score": 1.0, "stage_scores": [1.0, 1.0]},
        {"index": 1, "relevance_score": 1.0, "stage_scores": [1.0, 1.0]},  # stage 0: floor
    ]
    last_stage_fails = CascadeReranker([(KeywordReranker(), None), (nan_for_b, None)])
    rows = _rows(last_stage_fails.rerank("cat", ["b cat", "cat"]))
    assert rows[1] == {
        "index": 0,
        "relevance_score": 1.0,  # the last stage's lowest judged score ("cat")
        "stage_scores": [1.0, 1.0],
        "rerank_failed": True,
        "rerank_error": "the model returned NaN",
    }
    cut = CascadeReranker([(nan_for_b, 1), (KeywordReranker(), None)])
    assert cut.score("cat", ["b cat", "cat"]) == [-1e30, 1.0]  # cut: finite, never returned
    assert [r.index for r in cut.rerank("cat", ["b cat", "cat"])] == [1]


def test_the_cache_never_stores_a_failure() -> None:
    llm = ScriptedLLM([TimeoutError("down"), "yes"])
    cached = CachedReranker(LLMPointwiseReranker(llm, max_retries=0))
    assert cached.rerank("q", ["a"])[0].details["rerank_failed"] is True
    assert len(cached.cache) == 0
    assert cached.score("q", ["a"]) == [1.0]  # asked again, not served the failure
    assert cached.score("q", ["a"]) == [1.0] and llm.calls == 2  # now cached
    nan_once = iter([NAN, 0.25])
    inner = FunctionReranker(lambda q, d: next(nan_once))
    cached = CachedReranker(inner)
    assert cached.score_many([("q", ["x"])]) == [[-1e30]]
    assert cached.score_many([("q", ["x"])]) == [[0.25]] and inner.calls == 2


def test_eval_reports_are_strict_json() -> None:
    instant = Timing(queries=1, pairs=3, seconds=0.0)
    assert math.isinf(instant.pairs_per_second)  # too fast to time ...
    assert strict_round_trip(instant.to_dict())["pairs_per_second"] is None  # ... null in JSON
    system = SystemResult("x", {"nDCG@10": 0.5}, {"nDCG@10": {"q": 0.5}}, timing=instant)
    report = EvalReport("toy", "bm25", 10, 1, ["q"], {"nDCG@10": "nDCG@10"}, [system])
    strict_round_trip(report.to_dict())

    data = Dataset(
        "toy",
        corpus={"d1": "red apple", "d2": "green pear", "d3": "pear pie"},
        queries={"q1": "pear"},
        qrels={"q1": {"d2": 1}},
    )
    failing = FunctionReranker(lambda q, d: NAN if d == "pear pie" else float("pear" in d))
    first = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
    report = evaluate(data, first, {"failing": failing}, top_n=3, progress=False)
    strict_round_trip(report.to_dict())
    assert report.system("failing").metrics["nDCG@10"] == 1.0  # d2 first, the failure last

    summary = score_distribution(failing, {"pear": ["red apple", "green pear", "pear pie"]})
    assert (summary.minimum, summary.maximum, summary.non_finite) == (0.0, 1.0, 1)
    strict_round_trip(
        {str(k): v for k, v in dataclasses.asdict(summary).items()}
        | {
            "quantiles": list(summary.quantiles.values()),
            "top_score_quantiles": list(summary.top_score_quantiles.values()),
        }
    )


def test_cli_rerank_output_is_strict_json_with_the_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rerankkit._specs

    docs = tmp_path / "docs.jsonl"
    docs.write_text('"a cat"\n"bad"\n""\n', encoding="utf-8")
    failing = FunctionReranker(lambda q, d: NAN if d == "bad" else 1.0)
    monkeypatch.setattr(rerankkit._specs, "build_reranker", lambda spec: failing)
    assert main(["rerank", "--query", "cat", "--docs", str(docs), "--reranker", "keyword:"]) == 0
    lines = [strict_loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"index": 0, "relevance_score": 1.0, "document": "a cat"},
        {
            "index": 1,
            "relevance_score": 1.0,  # unjudged: the lowest judged score, flagged
            "rerank_failed": True,
            "rerank_error": "the model returned NaN",
            "document": "bad",
        },
        {"index": 2, "relevance_score": 1.0, "empty_document": True, "document": ""},
    ]


# --- both adapters: JSON-strict round trips of their output after failures -----------------


def test_langchain_documents_round_trip_after_failures() -> None:
    from langchain_core.documents import Document
    from langchain_core.load import dumps

    from langchain_rerankkit import RerankKitCompressor

    documents = [Document(text, id=f"d{i}") for i, text in enumerate(DOCS)]
    for run in ("sync", "async"):
        compressor = RerankKitCompressor(reranker=failing_pointwise(), top_n=None)
        if run == "sync":
            out = compressor.compress_documents(documents, "q")
        else:
            out = asyncio.run(compressor.acompress_documents(documents, "q"))
        assert [strict_round_trip(d.metadata) for d in out] == [
            {k: v for k, v in row.items() if k != "index"} for row in EXPECTED
        ]
        for document in out:
            dumped = strict_loads(document.model_dump_json())
            assert dumped["metadata"] == strict_round_trip(document.metadata)
            assert strict_loads(dumps(document))["kwargs"]["metadata"] == dumped["metadata"]


def test_llamaindex_nodes_round_trip_after_failures() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerankkit import RerankKitPostprocessor

    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(DOCS)
    ]
    for run in ("sync", "async"):
        post = RerankKitPostprocessor(reranker=failing_pointwise(), top_n=None)
        if run == "sync":
            out = post.postprocess_nodes(nodes, query_str="q")
        else:
            out = asyncio.run(post.apostprocess_nodes(nodes, query_str="q"))
        assert [(n.node.node_id, n.score) for n in out] == [
            ("n0", 1.0),
            ("n2", 0.0),
            ("n1", 0.0),
            ("n3", 0.0),
        ]
        for node in out:
            dumped = strict_loads(node.model_dump_json())
            assert dumped["score"] == node.score  # not silently null
            assert dumped["node"]["metadata"] == strict_round_trip(node.node.metadata)
        assert out[2].node.metadata["rerank_failed"] is True
        assert "rerank_failed" not in out[1].node.metadata  # a genuine "no"


# --- real models whose outputs are NaN ------------------------------------------------------


@pytest.mark.slow
def test_a_cross_encoder_that_outputs_nan(tmp_path: Path, tiny_cross_encoder: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    from rerankkit import CrossEncoderReranker

    path = Path(shutil.copytree(tiny_cross_encoder, tmp_path / "nan-ce"))
    model = AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        model.classifier.bias.fill_(float("nan"))
    model.save_pretrained(path)
    results = CrossEncoderReranker(path, device="cpu", dtype="float32").rerank("q", ["one", "two"])
    assert _rows(results) == [
        {
            "index": i,
            "relevance_score": 0.0,  # nothing judged
            "rerank_failed": True,
            "rerank_error": "the model returned NaN",
        }
        for i in range(2)
    ]


@pytest.mark.slow
def test_a_causal_lm_that_outputs_nan(tmp_path: Path) -> None:
    import torch
    from test_causal_lm import _build
    from transformers import AutoModelForCausalLM

    from rerankkit import CausalLMReranker

    path = _build(tmp_path / "nan-lm", chat=False)
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    model.save_pretrained(path)
    scores = CausalLMReranker(path, device="cpu").score("q", ["one", "two"])
    assert strict_round_trip(scores) == [LOWEST_SCORE, LOWEST_SCORE]
