"""Issue 23: calibrated relevance (fit, file, CalibratedReranker), the adaptive cut
(``min_relevance``/``on_no_relevant``) in the core and both adapters, ``rerankkit calibrate``."""

from __future__ import annotations

import asyncio
import json
import math
import pickle
import random
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from llama_index.core.callbacks import CallbackManager, CBEventType
from llama_index.core.callbacks.base_handler import BaseCallbackHandler as LlamaHandler
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import (
    CachedReranker,
    CalibratedReranker,
    CalibrationError,
    CausalLMReranker,
    CrossEncoderReranker,
    LLMPointwiseReranker,
    Reranker,
    build_reranker,
    reranker_spec,
)
from rerankkit.cli import main
from rerankkit.eval import (
    Calibration,
    brier_score,
    expected_calibration_error,
    fit_calibration,
    threshold_table,
)
from rerankkit.testing import FixedScoreReranker, KeywordReranker

from framework_fakes import FixedRetriever  # isort: skip

PLATT = Calibration("platt", {"a": 2.0, "b": -2.0}, reranker="keyword:")
"""KeywordReranker counts query words: 0 -> 0.119, 1 -> 0.5, 2 -> 0.881."""
TEXTS = ["a dog", "a cat", "cat cat", "a cow"]


# --------------------------------------------------------------------------- the map


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.sampled_from([-3.0, -1.0, 0.0, 0.2, 0.2, 1.5, 9.0]) | finite, max_size=12),
    xs=st.lists(finite, min_size=1, max_size=6, unique=True),
    ys=st.lists(st.floats(0, 1), min_size=6, max_size=6),
)
def test_calibration_keeps_the_ranking_and_ties(
    scores: list[float], xs: list[float], ys: list[float]
) -> None:
    # an isotonic map with flat steps (equal y) makes distinct raw scores equal probabilities
    isotonic = Calibration(
        "isotonic", {"x": sorted(xs), "y": sorted(ys)[: len(xs)]}, reranker="FixedScoreReranker"
    )
    for calibration in (
        isotonic,
        Calibration("platt", {"a": 0.3, "b": 1.0}, reranker="FixedScoreReranker"),
    ):
        raw = FixedScoreReranker(scores)
        calibrated = CalibratedReranker(raw, calibration)
        documents = [f"d{i}" for i in range(len(scores))]
        assert [r.index for r in calibrated.rerank("q", documents)] == [
            r.index for r in raw.rerank("q", documents)
        ]
        probabilities = calibrated.score("q", documents)
        for i, j in [(i, j) for i in range(len(scores)) for j in range(len(scores))]:
            if scores[i] == scores[j]:
                assert probabilities[i] == probabilities[j]  # ties stay ties
            elif scores[i] < scores[j]:
                assert probabilities[i] <= probabilities[j]  # monotone non-decreasing
        assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_isotonic_interpolates_and_clips_like_scikit_learn() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = random.Random(3)
    x = [rng.uniform(-2, 2) for _ in range(200)]
    y = [int(rng.random() < 1 / (1 + math.exp(-3 * v))) for v in x]
    model = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(x, y)
    calibration = Calibration(
        "isotonic",
        {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()},
        reranker="k",
    )
    probe = [-5.0, -1.234, 0.0, 0.777, 5.0]
    assert calibration.apply(probe) == pytest.approx(model.predict(probe).tolist(), abs=1e-12)


def test_platt_map_and_nan() -> None:
    assert PLATT.apply([1.0]) == [0.5]
    assert PLATT.probability(2.0) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert math.isnan(PLATT.probability(float("nan")))


@pytest.mark.parametrize(
    ("method", "parameters", "message"),
    [
        ("platt", {"a": -1.0, "b": 0.0}, "must be > 0"),
        ("isotonic", {"x": [0.0, 0.0], "y": [0.1, 0.2]}, "strictly increasing"),
        ("isotonic", {"x": [0.0, 1.0], "y": [0.5, 0.2]}, "non-decreasing"),
        ("sigmoid", {}, "'platt' or 'isotonic'"),
    ],
)
def test_a_map_that_is_not_monotone_is_refused(
    method: str, parameters: dict[str, Any], message: str
) -> None:
    with pytest.raises(CalibrationError, match=message):
        Calibration(method, parameters, reranker="keyword:")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the file


def test_file_round_trips_and_names_its_reranker(tmp_path: Path) -> None:
    path = PLATT.save(tmp_path / "cal.json")
    data = json.loads(path.read_text())
    assert data["format"] == "rerankkit-calibration/1" and data["reranker"] == "keyword:"
    loaded = Calibration.load(path)
    assert loaded == PLATT and loaded.source == str(path)

    spec = f"keyword:?calibration={path}"
    reranker = build_reranker(spec)
    assert isinstance(reranker, CalibratedReranker)
    assert reranker_spec(reranker) == spec
    assert reranker_spec(build_reranker(reranker_spec(reranker))) == spec
    copy = pickle.loads(pickle.dumps(reranker))
    assert copy.score("cat", TEXTS) == reranker.score("cat", TEXTS)
    assert [round(s, 3) for s in reranker.score("cat", TEXTS)] == [0.119, 0.5, 0.881, 0.119]


def test_a_calibration_for_another_reranker_is_refused(tmp_path: Path) -> None:
    other = Calibration("platt", {"a": 1.0, "b": 0.0}, reranker="cross-encoder:/models/ce-a")
    path = other.save(tmp_path / "other.json")
    with pytest.raises(CalibrationError, match="fitted for 'cross-encoder:/models/ce-a'"):
        CalibratedReranker(KeywordReranker(), path)
    with pytest.raises(CalibrationError, match="not for 'keyword:'"):
        build_reranker(f"keyword:?calibration={path}")
    with pytest.raises(CalibrationError, match="FixedScoreReranker"):
        CalibratedReranker(FixedScoreReranker([1.0]), PLATT)


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "platt"}))
    with pytest.raises(CalibrationError, match="format None"):
        Calibration.load(bad)
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "missing.json")


def test_calibration_without_a_file_pickles_but_has_no_spec() -> None:
    reranker = CalibratedReranker(KeywordReranker(), PLATT)
    assert pickle.loads(pickle.dumps(reranker)).score("cat", ["cat"]) == [0.5]
    with pytest.raises(TypeError, match="not loaded from a file"):
        reranker_spec(reranker)


# --------------------------------------------------------------------------- fitting


def test_fit_picks_platt_on_logistic_data_and_recovers_it() -> None:
    rng = random.Random(0)
    scores, labels = [], []
    for _ in range(40):
        row = [rng.uniform(-4, 4) for _ in range(25)]
        scores.append(row)
        labels.append([int(rng.random() < 1 / (1 + math.exp(-(1.5 * s - 1.0)))) for s in row])
    calibration = fit_calibration(scores, labels, reranker="keyword:", fitted_on={"data": "toy"})
    assert calibration.method == "platt" == calibration.metrics["chosen"]
    assert calibration.parameters["a"] == pytest.approx(1.5, abs=0.3)
    assert calibration.parameters["b"] == pytest.approx(-1.0, abs=0.3)
    losses = calibration.metrics["held_out_log_loss"]
    assert losses["platt"] <= losses["isotonic"]
    assert calibration.metrics["after_held_out"]["ece"] < 0.06
    assert calibration.fitted_on == {"data": "toy"}


def test_fit_picks_isotonic_on_a_step() -> None:
    rng = random.Random(1)
    scores = [[rng.uniform(0, 10) for _ in range(30)] for _ in range(30)]
    # P(relevant) jumps from 0.1 to 0.9 at 5, then back to 0.9 plateau: no logistic fits well
    labels = [
        [int(rng.random() < (0.9 if 5 < s < 6 or s > 9 else 0.1)) for s in row] for row in scores
    ]
    calibration = fit_calibration(scores, labels, reranker="keyword:")
    assert calibration.method == "isotonic"


def test_fit_refuses_one_class_and_a_single_query() -> None:
    with pytest.raises(ValueError, match="both relevant and non-relevant"):
        fit_calibration([[0.1, 0.2], [0.3]], [[0, 0], [0]], reranker="k")
    with pytest.raises(ValueError, match="at least 2 queries"):
        fit_calibration([[0.1, 0.2]], [[0, 1]], reranker="k")


def test_ece_brier_and_thresholds_by_hand() -> None:
    probabilities = [0.05, 0.12, 0.18, 0.55, 0.95]
    labels = [0, 0, 1, 1, 1]
    # bins of width 0.1: [0,.1): 0.05 vs 0; [.1,.2): mean .15 vs 0.5; [.5,.6): .55 vs 1;
    # [.9,1]: .95 vs 1
    expected = (0.05 + 2 * 0.35 + 0.45 + 0.05) / 5
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)
    squared = [0.05**2, 0.12**2, 0.82**2, 0.45**2, 0.05**2]
    assert brier_score(probabilities, labels) == pytest.approx(sum(squared) / 5)
    rows = {r["target"]: r["threshold"] for r in threshold_table(probabilities, labels)}
    # kept at t: 0.95 -> 1/1 relevant, 0.55 -> 2/2, 0.18 -> 3/3, 0.12 -> 3/4, 0.05 -> 3/5
    assert rows["precision >= 0.9"] == 0.18 and rows["precision >= 0.7"] == 0.12  # most recall
    assert rows["precision >= 0.5"] == 0.05
    assert rows["recall >= 0.5"] == 0.55 and rows["recall >= 0.9"] == 0.18  # the strictest


# --------------------------------------------------------------------------- adaptive cut


def calibrated() -> CalibratedReranker:
    return CalibratedReranker(KeywordReranker(), PLATT)


def test_min_relevance_keeps_probable_documents_then_top_n() -> None:
    assert [r.index for r in calibrated().rerank("cat", TEXTS, min_relevance=0.5)] == [2, 1]
    assert [r.index for r in calibrated().rerank("cat", TEXTS, min_relevance=0.5, top_n=1)] == [2]
    assert calibrated().rerank("cat", TEXTS, min_relevance=0.9) == []
    best = calibrated().rerank("cat", TEXTS, min_relevance=0.9, on_no_relevant="best")
    assert [r.index for r in best] == [2] and best[0].details["below_min_relevance"] is True
    later = asyncio.run(
        calibrated().arerank("cat", TEXTS, min_relevance=0.9, on_no_relevant="best")
    )
    assert later == best and later[0].details["below_min_relevance"] is True


def test_min_relevance_is_refused_on_a_scale_that_is_not_a_probability() -> None:
    with pytest.raises(ValueError, match=r"min_relevance.*KeywordReranker.*rerankkit calibrate"):
        KeywordReranker().rerank("cat", TEXTS, min_relevance=0.5)
    with pytest.raises(ValueError, match=r"min_relevance must lie in \[0, 1\]"):
        calibrated().rerank("cat", TEXTS, min_relevance=1.5)
    with pytest.raises(ValueError, match="on_no_relevant"):
        calibrated().rerank("cat", TEXTS, min_relevance=0.5, on_no_relevant="none")


def test_min_relevance_is_refused_on_an_uncalibrated_probability_scale(
    tiny_cross_encoder: Path,
) -> None:
    # [0, 1] by construction, but not calibrated: the raw sigmoid's ECE was 0.499 on NovelEval
    sigmoid = CrossEncoderReranker(tiny_cross_encoder, dtype="float32", activation="sigmoid")
    for reranker in [sigmoid, LLMPointwiseReranker(lambda prompt: "yes", method="yes_no")]:
        assert reranker.probability_scores and not reranker.calibrated_scores
        with pytest.raises(ValueError, match=r"min_relevance needs calibrated.*calibration=cal"):
            reranker.rerank("cat", TEXTS, min_relevance=0.5)
        with pytest.raises(ValueError, match="min_relevance needs calibrated"):
            RerankKitCompressor(reranker=reranker, min_relevance=0.5)
    # a causal LM's P(yes) (loading one costs seconds): it does not claim calibration either
    assert CausalLMReranker.calibrated_scores is Reranker.calibrated_scores
    calibration = Calibration("platt", {"a": 1.0, "b": 0.0}, reranker=reranker_spec(sigmoid))
    wrapped = CachedReranker(CalibratedReranker(sigmoid, calibration))  # a wrapper delegates
    assert wrapped.calibrated_scores
    assert len(wrapped.rerank("cat", TEXTS, min_relevance=0.0)) == len(TEXTS)


class LangChainRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.outputs: list[Any] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kw: Any) -> None:
        self.events.append((name, data))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.outputs.append(outputs)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("on_no_relevant", ["empty", "best"])
def test_langchain_abstains_marked_and_traced(asynchronous: bool, on_no_relevant: str) -> None:
    compressor = RerankKitCompressor(
        reranker=calibrated(), min_relevance=0.9, on_no_relevant=on_no_relevant
    )
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=FixedRetriever(docs=[Document(t) for t in TEXTS])
    )
    recorder = LangChainRecorder()
    config = {"callbacks": [recorder]}
    if asynchronous:
        found = asyncio.run(retriever.ainvoke("cat", config=config))
    else:
        found = retriever.invoke("cat", config=config)
    if on_no_relevant == "empty":
        assert found == []
    else:
        assert [d.page_content for d in found] == ["cat cat"]
        assert found[0].metadata["below_min_relevance"] is True
    assert recorder.events == [
        (
            "rerankkit_abstained",
            {
                "query": "cat",
                "documents": 4,
                "min_relevance": 0.9,
                "on_no_relevant": on_no_relevant,
            },
        )
    ]
    compressor_end = next(o for o in recorder.outputs if isinstance(o, dict) and "abstained" in o)
    assert compressor_end["abstained"] is True


def test_langchain_keeps_relevant_documents_without_an_event() -> None:
    compressor = RerankKitCompressor(reranker=calibrated(), min_relevance=0.5, top_n=3)
    recorder = LangChainRecorder()
    kept = compressor.compress_documents([Document(t) for t in TEXTS], "cat", callbacks=[recorder])
    assert [d.page_content for d in kept] == ["cat cat", "a cat"]
    assert recorder.events == [] and recorder.outputs[-1]["abstained"] is False


def test_adapters_with_a_calibration_file_serialize(tmp_path: Path) -> None:
    spec = f"keyword:?calibration={PLATT.save(tmp_path / 'cal.json')}"
    compressor = RerankKitCompressor(reranker=spec, min_relevance=0.5, on_no_relevant="best")
    dumped = compressor.model_dump()
    assert dumped["reranker"] == spec and dumped["min_relevance"] == 0.5
    docs = [Document(t) for t in TEXTS]
    expected = compressor.compress_documents(docs, "cat")
    for copy in (RerankKitCompressor(**dumped), pickle.loads(pickle.dumps(compressor))):
        assert copy.compress_documents(docs, "cat") == expected
    post = RerankKitPostprocessor(spec, min_relevance=0.5)
    assert pickle.loads(pickle.dumps(post)).min_relevance == 0.5


def test_adapters_refuse_min_relevance_on_an_uncalibrated_scale() -> None:
    with pytest.raises(ValueError, match="calibrate"):
        RerankKitCompressor(reranker=KeywordReranker(), min_relevance=0.5)
    with pytest.raises(ValueError, match="calibrate"):
        RerankKitPostprocessor(KeywordReranker(), min_relevance=0.5)


class LlamaRecorder(LlamaHandler):
    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.ends: list[dict[str, Any]] = []

    def on_event_start(
        self,
        event_type: Any,
        payload: Any = None,
        event_id: str = "",
        parent_id: str = "",
        **kw: Any,
    ) -> str:
        return event_id

    def on_event_end(
        self, event_type: Any, payload: Any = None, event_id: str = "", **kw: Any
    ) -> None:
        if event_type == CBEventType.RERANKING:
            self.ends.append(payload or {})

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(self, trace_id: str | None = None, trace_map: Any = None) -> None:
        pass


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("on_no_relevant", ["empty", "best"])
def test_llamaindex_abstains_marked_and_traced(asynchronous: bool, on_no_relevant: str) -> None:
    recorder = LlamaRecorder()
    post = RerankKitPostprocessor(
        calibrated(),
        min_relevance=0.9,
        on_no_relevant=on_no_relevant,
        callback_manager=CallbackManager([recorder]),
    )
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.3) for t in TEXTS]
    if asynchronous:
        found = asyncio.run(post.apostprocess_nodes(nodes, query_str="cat"))
    else:
        found = post.postprocess_nodes(nodes, query_str="cat")
    if on_no_relevant == "empty":
        assert found == []
    else:
        assert [n.text for n in found] == ["cat cat"]
        assert found[0].node.metadata["below_min_relevance"] is True
    assert [end.get("abstained") for end in recorder.ends] == [True]
    assert all(n.score == 0.3 for n in nodes)  # the caller's nodes are untouched


# --------------------------------------------------------------------------- the command


def write_toy(folder: Path, seed: int) -> Path:
    rng = random.Random(seed)
    words = ["cat", "dog", "cow", "pig", "hen", "fox", "owl", "bee", "ant", "eel"]
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for q in range(10):
        word = words[q]
        queries.append({"_id": f"q{q}", "text": word})
        for d in range(8):
            relevant = rng.random() < 0.4
            extra = f" {word} {word}" if relevant and rng.random() < 0.8 else ""
            text = " ".join(rng.choice(words) for _ in range(3)) + extra
            corpus.append({"_id": f"q{q}-{d}", "title": "", "text": text})
            qrels.append(f"q{q}\tq{q}-{d}\t{int(relevant)}")
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels))
    return folder


def test_calibrate_command_fits_then_checks_on_another_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit, other = write_toy(tmp_path / "fit", 1), write_toy(tmp_path / "other", 2)
    output = tmp_path / "kw.cal.json"
    base = ["calibrate", "--all-judged", "--reranker", "keyword:"]
    assert main([*base, "--data", str(fit), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "chosen: **" in printed and "| precision >= 0.9 |" in printed
    assert output.is_file() and output.with_suffix(".png").stat().st_size > 1000
    calibration = Calibration.load(output)
    assert calibration.reranker == "keyword:" and calibration.fitted_on["data"] == str(fit)
    assert calibration.metrics["pairs"] == 80

    png = tmp_path / "other.png"
    assert (
        main([*base, "--data", str(other), "--calibration", str(output), "--output", str(png)]) == 0
    )
    printed = capsys.readouterr().out
    assert "| calibrated |" in printed and png.is_file()

    other_model = Calibration("platt", {"a": 1.0, "b": 0.0}, reranker="cross-encoder:/m/ce")
    wrong = other_model.save(tmp_path / "ce.cal.json")
    assert main([*base, "--data", str(other), "--calibration", str(wrong)]) == 2
    assert "was fitted for 'cross-encoder:/m/ce', not for 'keyword:'" in capsys.readouterr().err


def test_an_unjudged_document_never_reaches_min_relevance() -> None:
    """An empty document shows the call's lowest judged score (0.8 here), flagged; the
    adaptive cut must not read that as P(relevant) = 0.8."""
    from rerankkit._ordering import rank, relevance_cut

    ranked = rank([0.8, -1e30], details=[{}, {"empty_document": True}])
    assert [r.score for r in ranked] == [0.8, 0.8]
    assert [r.index for r in relevance_cut(ranked, 0.5, "empty", None)] == [0]


# --------------------------------------------------------------------------- rerank and serve


def test_rerank_command_cuts_abstains_and_refuses_an_uncalibrated_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(t) for t in TEXTS))
    spec = f"keyword:?calibration={PLATT.save(tmp_path / 'cal.json')}"
    command = ["rerank", "--query", "cat", "--docs", str(docs), "--reranker", spec]

    def written(*options: str) -> list[dict[str, Any]]:
        assert main([*command, *options]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    kept = written("--min-relevance", "0.5")  # P = sigmoid(2 * words - 2): 0.881, 0.5
    assert [(r["index"], round(r["relevance_score"], 3)) for r in kept] == [(2, 0.881), (1, 0.5)]
    assert written("--min-relevance", "0.9") == []  # abstains: writes nothing
    best = written("--min-relevance", "0.9", "--on-no-relevant", "best")
    assert [(r["index"], r["below_min_relevance"]) for r in best] == [(2, True)]
    assert main([*command[:-1], "keyword:", "--min-relevance", "0.5"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rerankkit rerank: error: argument --min-relevance: min_relevance")
    assert "rerankkit calibrate" in error and "KeywordReranker" in error


def test_serve_takes_min_relevance_in_every_shape_and_marks_abstaining() -> None:
    from test_serve import call

    from rerankkit.serve import ServeSettings, create_app

    app = create_app(calibrated(), ServeSettings(model_name="kw"))
    v2 = {"model": "kw", "query": "cat", "documents": TEXTS, "min_relevance": 0.5}
    body = call(app, "POST", "/v2/rerank", json=v2).json()
    assert [r["index"] for r in body["results"]] == [2, 1] and body["abstained"] is False
    plain = call(app, "POST", "/v2/rerank", json={**v2, "min_relevance": None}).json()
    assert len(plain["results"]) == 4 and "abstained" not in plain  # unchanged without it
    none = {**v2, "min_relevance": 0.9}
    assert call(app, "POST", "/v2/rerank", json=none).json()["results"] == []
    assert call(app, "POST", "/v2/rerank", json=none).json()["abstained"] is True
    best = call(app, "POST", "/v1/rerank", json={**none, "on_no_relevant": "best"}).json()
    assert [(r["index"], r["below_min_relevance"]) for r in best["results"]] == [(2, True)]
    assert best["abstained"] is True
    tei = {"query": "cat", "texts": TEXTS, "min_relevance": 0.9}
    assert call(app, "POST", "/rerank", json=tei).json() == []  # TEI's list: [] is the mark
    infinity = {"query": "cat", "documents": TEXTS, "min_relevance": 0.9}
    assert call(app, "POST", "/rerank", json=infinity).json()["abstained"] is True
    bad = call(app, "POST", "/v2/rerank", json={**v2, "min_relevance": 1.5})
    assert bad.status_code == 422 and "min_relevance" in bad.json()["message"]


def test_serve_refuses_min_relevance_on_an_uncalibrated_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from test_serve import call

    from rerankkit.serve import ServeSettings, create_app

    app = create_app(KeywordReranker(), ServeSettings(model_name="kw"))
    body = {"model": "kw", "query": "cat", "documents": TEXTS, "min_relevance": 0.5}
    refused = call(app, "POST", "/v2/rerank", json=body)
    assert refused.status_code == 422 and refused.json()["error_type"] == "uncalibrated"
    assert refused.json()["message"].startswith("min_relevance needs calibrated probabilities")
    assert "serve 'SPEC?calibration=cal.json'" in refused.json()["message"]
    for wrong in ("0.5", True, [0.5], {}):  # a 422 naming the field, never a 500
        typed = call(app, "POST", "/v2/rerank", json={**body, "min_relevance": wrong})
        assert typed.status_code == 422 and typed.json()["error_type"] == "invalid_request"
        assert typed.json()["message"].startswith("min_relevance: ")
    with pytest.raises(ValueError, match="min_relevance needs calibrated"):
        create_app(KeywordReranker(), ServeSettings(min_relevance=0.5))  # refused at startup
    default = create_app(calibrated(), ServeSettings(min_relevance=0.9, on_no_relevant="best"))
    answer = call(default, "POST", "/v2/rerank", json={**body, "min_relevance": None}).json()
    assert answer["abstained"] is True and answer["results"][0]["below_min_relevance"] is True
    command = ["serve", "--reranker", "keyword:", "--port", "0", "--min-relevance", "0.5"]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "rerankkit serve: error: argument --min-relevance: min_relevance needs calib" in error
