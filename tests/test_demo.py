"""The ``rerankkit demo`` main job: packaged data, layout helpers, metrics, and the full run.

The full runs go through both adapters; their printed rankings and metrics are checked
against an independent computation (the core reranker API + hand-written MRR), never
against numbers copied from a previous run.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from rerankkit.cli import _demo as demo
from rerankkit.cli._demo import (
    display_width,
    first_relevant_rank,
    fit_width,
    load_sample_corpus,
    load_sample_queries,
    run_demo,
)
from rerankkit.eval._metrics import ranking_metrics

ROW = re.compile(
    r"^\s+(BM25 first stage|reranked, LangChain|reranked, LlamaIndex)((?:\s+[\d.]+)+)$"
)
PASSAGE_ID = re.compile(r"\b(?:en|ko)-[a-z]+-\d+\b")


# ----------------------------------------------------------------- packaged data


def _raw(name: str) -> list[dict]:
    text = resources.files("rerankkit.cli").joinpath("data", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sample_data_is_consistent_and_bilingual() -> None:
    passages, queries = load_sample_corpus(), load_sample_queries()
    ids = [p.id for p in passages]
    assert len(ids) == len(set(ids)) and 40 <= len(ids) <= 100
    assert {p.lang for p in passages} == {"en", "ko"} == {q.lang for q in queries}
    assert len(queries) >= 12
    for query in queries:
        assert query.relevant and set(query.relevant) <= set(ids), query.id
    # The loaders return exactly what the files hold, nothing dropped or reordered.
    assert [p.text for p in passages] == [r["text"] for r in _raw("demo_corpus.jsonl")]
    assert [q.text for q in queries] == [r["text"] for r in _raw("demo_queries.jsonl")]


# ----------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("text", "cells"), [("", 0), ("abc", 3), ("김치", 4), ("a김b", 4), ("KTX 고속열차", 12)]
)
def test_display_width_counts_wide_characters_twice(text: str, cells: int) -> None:
    assert display_width(text) == cells


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "exactly-10",
        "a much longer English text",
        "김치는 어떻게 발효되나요?",
        "a김b치c",
        "김",
    ],
)
@pytest.mark.parametrize("width", [1, 2, 5, 10, 11])
def test_fit_width_always_fills_exactly_the_width(text: str, width: int) -> None:
    cell = fit_width(text, width)
    assert display_width(cell) == width
    if display_width(text) <= width:
        assert cell.rstrip(" ") == text.rstrip(" ")
    else:
        assert cell.rstrip(" ").endswith("…")
        assert text.startswith(cell.rstrip(" ")[:-1])


def test_first_relevant_rank() -> None:
    assert first_relevant_rank(["a", "b", "c"], ["c", "b"]) == 2
    assert first_relevant_rank(["a"], ["z"]) is None
    assert first_relevant_rank([], ["z"]) is None


def _hand_metrics(rankings: dict, relevant: dict, k: int) -> dict[str, float]:
    """Hit rate and MRR written out by hand: the independent check of the demo's numbers."""
    hit1 = hitk = rr = 0.0
    for qid, answers in relevant.items():
        ranked = rankings.get(qid, [])
        rank = next((i for i, doc in enumerate(ranked, 1) if doc in answers), None)
        if rank is not None:
            rr += 1.0 / rank
            hit1 += rank == 1
            hitk += rank <= k
    n = len(relevant)
    return {"hit@1": hit1 / n, f"hit@{k}": hitk / n, "MRR": rr / n}


def test_ranking_metrics_agree_with_a_hand_computation() -> None:
    relevant = {"q1": ["a"], "q2": ["x", "y"], "q3": ["m"], "q4": ["p"]}
    rankings = {"q1": ["b", "c", "a"], "q2": ["y", "x"], "q3": ["n", "o"], "q4": []}
    got = ranking_metrics(rankings, relevant, top_n=2)
    assert got == pytest.approx(_hand_metrics(rankings, relevant, 2))
    assert got["MRR"] == pytest.approx((1 / 3 + 1) / 4)  # q3 and the empty q4 count as misses


# ----------------------------------------------------------------- full runs


def _summary(output: str) -> dict[str, list[float]]:
    rows = {}
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = [float(v) for v in match.group(2).split()]
    return rows


def _printed_langchain_rankings(output: str, top_k: int) -> dict[str, tuple[list[str], list[str]]]:
    """``{query_id: (before ids, after ids)}`` read from the LangChain section."""
    section = output.split("=== LangChain")[1].split("=== LlamaIndex")[0]
    out: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for line in section.splitlines():
        head = re.match(r"^(q\d+)\s", line)
        if head:
            current = head.group(1)
            out[current] = ([], [])
            continue
        row = re.match(r"^\s+(\d+)\s", line)
        if current and row and int(row.group(1)) <= top_k:
            ids = PASSAGE_ID.findall(line)
            if not ids:
                continue
            # a row holds the before id and, when the reranked list is that long, the after id
            out[current][0].append(ids[0])
            if len(ids) > 1:
                out[current][1].append(ids[1])
    return out


def _independent_runs(reranker, depth: int = 10) -> tuple[dict, dict, dict]:
    """BM25 candidates from the index directly, reranked with the core API (when a reranker
    is given): no adapter, no demo code involved."""
    from rerankkit.eval._retrieval import BM25Index

    corpus = _raw("demo_corpus.jsonl")
    queries = _raw("demo_queries.jsonl")
    index = BM25Index({r["id"]: r["text"] for r in corpus}, language="english")
    texts = {r["id"]: r["text"] for r in corpus}
    before, after = {}, {}
    for query in queries:
        ids = [str(doc) for doc, _ in index.search([query["text"]], top_n=depth)[0]]
        before[query["id"]] = ids
        if reranker is not None:
            results = reranker.rerank(query["text"], [texts[i] for i in ids])
            after[query["id"]] = [ids[r.index] for r in results]
    relevant = {q["id"]: q["relevant"] for q in queries}
    return before, after, relevant


def test_demo_prints_before_and_after_through_both_adapters(capsys) -> None:
    from rerankkit.testing import KeywordReranker

    assert run_demo(reranker="keyword:", top_n=2) == 0
    output = capsys.readouterr().out
    assert "ContextualCompressionRetriever" in output and "RerankKitPostprocessor" in output
    before, after, relevant = _independent_runs(KeywordReranker())
    printed = _printed_langchain_rankings(output, top_k=2)
    assert set(printed) == set(relevant)
    for qid, (printed_before, printed_after) in printed.items():
        assert printed_before == before[qid][:2], qid
        assert printed_after == after[qid][:2], qid
    rows = _summary(output)
    expected_before = _hand_metrics(before, relevant, 2)
    expected_after = _hand_metrics(after, relevant, 2)
    assert rows["BM25 first stage"][:3] == pytest.approx(list(expected_before.values()), abs=6e-3)
    for system in ("reranked, LangChain", "reranked, LlamaIndex"):
        assert rows[system][:3] == pytest.approx(list(expected_after.values()), abs=6e-3)


@pytest.fixture
def one_torch_thread():
    """Tiny batches gain nothing from intra-op threads, and on a busy 2-core CI box the
    spinning threads made this test several times slower; only speed changes."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cosine_rankings(encoder, before: dict, queries: list[dict], texts: dict) -> dict:
    """Candidates ordered by cosine from two ``embed`` calls (not ``rerank``), stable ties."""
    ids = list(texts)
    doc_vectors = dict(zip(ids, encoder.embed([texts[i] for i in ids]), strict=True))
    query_vectors = encoder.embed([q["text"] for q in queries])
    after = {}
    for query, vector in zip(queries, query_vectors, strict=True):
        candidates = before[query["id"]]
        scores = [float(doc_vectors[i] @ vector) for i in candidates]
        order = sorted(range(len(candidates)), key=lambda j: -scores[j])
        after[query["id"]] = [candidates[j] for j in order]
    return after


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_embedding_reranker_beats_bm25_on_the_sample_corpus(capsys, monkeypatch) -> None:
    """The offline default: no cached cross-encoder -> one note line, then the bi-encoder."""
    from rerankkit import EmbeddingReranker

    monkeypatch.setattr(demo, "_in_hf_cache", lambda repo_id: False)
    assert run_demo(top_n=3) == 0
    output = capsys.readouterr().out
    notes = [line for line in output.splitlines() if "not in the local Hugging Face cache" in line]
    assert len(notes) == 1 and "all-MiniLM-L6-v2" in notes[0]
    # The LlamaIndex pass scores the same pairs as the LangChain pass: all from the cache.
    reused = re.search(r"\((\d+) scores reused", output)
    assert reused is not None

    encoder = EmbeddingReranker(str(demo.packaged_bi_encoder_path()))
    before, _, relevant = _independent_runs(None)
    texts = {r["id"]: r["text"] for r in _raw("demo_corpus.jsonl")}
    after = _cosine_rankings(encoder, before, _raw("demo_queries.jsonl"), texts)
    mrr_before = _hand_metrics(before, relevant, 3)["MRR"]
    mrr_after = _hand_metrics(after, relevant, 3)["MRR"]
    rows = _summary(output)
    assert rows["BM25 first stage"][2] == pytest.approx(mrr_before, abs=6e-4)
    assert rows["reranked, LangChain"][2] == pytest.approx(mrr_after, abs=6e-4)
    assert rows["reranked, LlamaIndex"][2] == pytest.approx(mrr_after, abs=6e-4)
    assert mrr_after > mrr_before
    assert int(reused.group(1)) == sum(len(ids) for ids in before.values())
    printed = _printed_langchain_rankings(output, top_k=3)
    for qid, (_, printed_after) in printed.items():
        assert printed_after == after[qid][:3], qid


def test_bad_arguments_exit_2_without_loading_a_model(capsys) -> None:
    assert run_demo(reranker="keyword:", top_n=0) == 2
    assert "top_n" in capsys.readouterr().err
    assert run_demo(reranker="keyword:", first_stage_top_n=0) == 2
    assert "first_stage_top_n" in capsys.readouterr().err
    assert run_demo(reranker=str(Path("/nonexistent/model-folder")), top_n=3) == 2
    assert "cannot load reranker" in capsys.readouterr().err


# ----------------------------------------------------------------- offline choice of reranker

_PROBE = textwrap.dedent(
    """
    import json, socket, sys, time
    attempts, sleeps = [], []
    def refuse(self, address, *args):
        attempts.append(str(address))
        raise OSError("network disabled by the test")
    socket.socket.connect = refuse
    real_sleep = time.sleep
    def sleep(seconds):
        sleeps.append(seconds)
        real_sleep(seconds)
    time.sleep = sleep
    noted = []
    from rerankkit.cli._demo import resolve_reranker
    reranker, description, note = resolve_reranker(
        None, on_note=lambda note: noted.append({"sleeps": list(sleeps),
                                                 "attempts": list(attempts)}))
    print(json.dumps({"at_note": noted[0] if noted else None,
                      "type": type(reranker).__name__, "description": description,
                      "note": note, "attempts": attempts}))
    """
)


def _probe(hf_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_HOME"] = str(hf_home)  # HF_HUB_OFFLINE deliberately unset: the check must not need it
    env["OMP_NUM_THREADS"] = "1"  # see one_torch_thread
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_default_model_missing_falls_back_fast_without_network(tmp_path) -> None:
    result = _probe(tmp_path / "empty-hf-home")
    assert result["type"] == "EmbeddingReranker"
    assert result["attempts"] == []
    assert result["note"].count("\n") == 0 and "ms-marco-MiniLM-L6-v2" in result["note"]
    # The point: the user hears at once, with no wait for hub retries (those take ~50 s):
    # nothing was tried on the network and nothing slept (no back-off) before the note.
    assert result["at_note"] == {"sleeps": [], "attempts": []}


@pytest.mark.slow
def test_default_model_in_the_cache_is_used(tmp_path, tiny_cross_encoder: Path) -> None:
    from rerankkit import DEFAULT_CROSS_ENCODER

    # The Hugging Face cache layout: models--ORG--NAME/{refs/main, snapshots/<commit>/...}.
    repo = tmp_path / "hf" / "hub" / ("models--" + DEFAULT_CROSS_ENCODER.replace("/", "--"))
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in tiny_cross_encoder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = _probe(tmp_path / "hf")
    assert result["type"] == "CrossEncoderReranker"
    assert result["note"] is None and DEFAULT_CROSS_ENCODER in result["description"]
    assert result["attempts"] == []


def test_output_can_go_to_any_stream() -> None:
    buffer = io.StringIO()
    assert run_demo(reranker="keyword:", top_n=1, out=buffer) == 0
    first_line = buffer.getvalue().splitlines()[0]
    assert first_line.startswith(f"rerankkit demo: {len(load_sample_corpus())} sample passages")
