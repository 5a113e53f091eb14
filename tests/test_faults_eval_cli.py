"""Issue 11, kind 9: the evaluation CLI's replayed bug reports, each kept as a test.

No query ids in common and an empty queries.jsonl exit non-zero naming the mismatch; an
``--output`` that is a file fails before the run; a reranker that fails to load loses nobody
else's results; ``--top-n`` below 10 leaves the first-stage row alone; batched runs and dense
first stages draw progress bars; a UTF-8 byte order mark is tolerated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerankkit.cli._commands import main
from rerankkit.eval import Dataset, bm25_search, dense_search, load_beir, rerank_run
from rerankkit.eval._datasets import json_lines, parse_qrels, parse_trec_run
from rerankkit.eval._runs import progress_slices
from rerankkit.testing import KeywordReranker

BOM = "\ufeff"
TEXTS = [
    "red apples grow on trees",
    "green pears are sweet",
    "a pear and an apple",
    "bananas are yellow",
    "an apple a day keeps the doctor away",
    "sweet red apple pie",
    "pear trees flower in spring",
    "yellow pears and green apples",
    "the doctor ate a banana",
    "apple orchards and pear orchards",
    "red fruit",
    "sweet green pear tart with apple",
]
CORPUS = [  # d2 has a title: it goes before the text
    {"_id": f"d{i}", "title": "Pears" if i == 2 else "", "text": text}
    for i, text in enumerate(TEXTS, start=1)
]
QUERIES = [{"_id": "q1", "text": "sweet green pear"}, {"_id": "q2", "text": "red apple"}]
QRELS = {"q1": {"d2": 2, "d12": 1, "d7": 1}, "q2": {"d1": 1, "d6": 2, "d11": 1}}


def write_beir(
    root: Path, *, queries: list[dict] | None = None, qrels: dict | None = None, bom: bool = False
) -> Path:
    (root / "qrels").mkdir(parents=True)
    mark = BOM if bom else ""

    def jsonl(name: str, rows: list[dict]) -> None:
        text = "".join(json.dumps(row) + "\n" for row in rows)
        (root / name).write_text(mark + text if rows else "", encoding="utf-8")

    jsonl("corpus.jsonl", CORPUS)
    jsonl("queries.jsonl", QUERIES if queries is None else queries)
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{qid}\t{doc}\t{grade}"
        for qid, judged in (QRELS if qrels is None else qrels).items()
        for doc, grade in judged.items()
    ]
    (root / "qrels" / "test.tsv").write_text(mark + "\n".join(lines) + "\n", encoding="utf-8")
    return root


def _eval(*args: str) -> int:
    return main(["eval", "--no-progress", *args])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The default toy collection, written as a BEIR folder."""
    return write_beir(tmp_path / "data")


# --------------------------------------------------------------------------- mismatches


def test_no_query_id_in_common_with_the_judgments_exits_2_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_beir(tmp_path / "data", qrels={"Q-1": {"d2": 1}, "Q-2": {"d1": 1}})
    assert _eval("--data", str(data), "--first-stage", "bm25") == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no table of zeros
    error = captured.err
    assert "none of the 2 queries in queries.jsonl has judgments" in error
    assert "Q-1" in error and "q1" in error


def test_a_run_with_no_judged_query_exits_2_naming_it(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "bm25.trec"
    run.write_text("Q1 Q0 d2 1 3.0 bm25\nQ1 Q0 d1 2 2.0 bm25\n", encoding="utf-8")
    assert _eval("--data", str(data), "--run", str(run), "--reranker", "keyword:") == 2
    error = capsys.readouterr().err
    assert str(run) in error and "none of its 1 queries" in error
    assert "Q1" in error and "q1" in error


def test_an_empty_queries_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_beir(tmp_path / "data", queries=[])
    assert _eval("--data", str(data), "--first-stage", "bm25") == 2
    assert "queries.jsonl is empty" in capsys.readouterr().err


# --------------------------------------------------------------------------- output


def test_output_that_is_an_existing_file_fails_before_the_run(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "report"
    taken.write_text("keep me", encoding="utf-8")
    # The reranker does not exist: reaching it would print a model error instead.
    spec = f"cross-encoder:{tmp_path / 'no-such-model'}"
    for output in (taken, taken / "inner"):
        code = _eval("--data", str(data), "--first-stage", "bm25", "--reranker", spec,
                     "--output", str(output))  # fmt: skip
        assert code == 2
        captured = capsys.readouterr()
        assert f"--output {output}" in captured.err and "existing file" in captured.err
        assert "no-such-model" not in captured.err and captured.out == ""
    assert taken.read_text(encoding="utf-8") == "keep me"


def test_a_reranker_that_fails_to_load_keeps_the_others_results(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    missing = f"cross-encoder:{tmp_path / 'no-such-model'}"
    code = _eval(
        "--data", str(data), "--first-stage", "bm25", "--top-n", "5",
        "--reranker", "keyword:", "--reranker", missing, "--reranker", "keyword:?",
        "--output", str(out),
    )  # fmt: skip
    assert code == 2
    captured = capsys.readouterr()
    assert "keyword" in captured.out and "wrote" in captured.out
    assert "1 of 3 rerankers failed" in captured.err and "no-such-model" in captured.err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    names = [system["name"] for system in report["systems"]]
    assert names == ["bm25", "keyword", "keyword #2"]
    assert any("no-such-model" in note for note in report["notes"])


# --------------------------------------------------------------------------- top_n


def test_top_n_below_10_leaves_the_first_stage_row_alone(data: Path, tmp_path: Path) -> None:
    import ir_measures

    rows = {}
    for depth in (3, 10, 50):
        out = tmp_path / f"out{depth}"
        assert _eval("--data", str(data), "--first-stage", "bm25", "--top-n", str(depth),
                     "--reranker", "keyword:", "--output", str(out)) == 0  # fmt: skip
        first = json.loads((out / "report.json").read_text(encoding="utf-8"))["systems"][0]
        rows[depth] = (first["metrics"]["nDCG@10"], first["metrics"]["MRR@10"])
    # Independently: BM25's top 10 per query scored by ir-measures.
    dataset = load_beir(data)
    run = bm25_search(dataset.corpus, dataset.queries, top_n=10)
    expected = ir_measures.calc_aggregate(
        [ir_measures.nDCG @ 10, ir_measures.RR @ 10], dataset.qrels, run
    )
    assert rows[3] == rows[10] == rows[50]
    assert rows[3] == pytest.approx(
        (expected[ir_measures.nDCG @ 10], expected[ir_measures.RR @ 10]), abs=1e-12
    )


# --------------------------------------------------------------------------- progress


def test_progress_slices_cover_every_query_once() -> None:
    for count in range(0, 60):
        for steps in (1, 3, 20):
            slices = progress_slices(count, steps)
            assert [i for a, b in slices for i in range(a, b)] == list(range(count))
            assert len(slices) == min(count, steps)


def _toy() -> Dataset:
    corpus = {row["_id"]: f"{row['title']} {row['text']}".strip() for row in CORPUS}
    queries = {row["_id"]: row["text"] for row in QUERIES}
    return Dataset("toy", corpus, queries, QRELS)


def test_a_batched_run_draws_a_bar_with_the_same_scores(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dataset = _toy()
    first = bm25_search(dataset.corpus, dataset.queries, top_n=10)
    quiet, _ = rerank_run(KeywordReranker(), dataset, first, progress=False, desc="kw")
    assert capsys.readouterr().err == ""
    shown, timing = rerank_run(KeywordReranker(), dataset, first, progress=True, desc="kw")
    assert timing.batched and "kw" in capsys.readouterr().err
    assert shown == quiet


def test_dense_search_draws_a_bar_while_embedding_the_corpus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import numpy as np

    def encoder(texts: list[str]) -> np.ndarray:  # letter counts, L2-normalised
        vectors = np.array(
            [[text.count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for text in texts], dtype=float
        )
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    dataset = _toy()
    quiet = dense_search(dataset.corpus, dataset.queries, 5, encoder=encoder)
    assert capsys.readouterr().err == ""
    shown = dense_search(dataset.corpus, dataset.queries, 5, encoder=encoder, progress=True,
                         batch_size=4)  # fmt: skip
    assert "embedding corpus" in capsys.readouterr().err
    assert shown == quiet


@pytest.mark.slow
def test_a_bi_encoder_run_draws_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    from rerankkit._specs import build_reranker

    dataset = _toy()
    first = bm25_search(dataset.corpus, dataset.queries, top_n=10)
    reranker = build_reranker("embedding:?device=cpu")
    quiet, _ = rerank_run(reranker, dataset, first, progress=False)
    shown, _ = rerank_run(reranker, dataset, first, progress=True, desc="bi-encoder")
    assert "bi-encoder" in capsys.readouterr().err
    for qid, scores in quiet.items():
        assert shown[qid] == pytest.approx(scores, abs=1e-6)


# --------------------------------------------------------------------------- byte order mark


def test_a_byte_order_mark_is_tolerated_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = load_beir(write_beir(tmp_path / "plain"))
    marked = load_beir(write_beir(tmp_path / "marked", bom=True))
    assert (marked.corpus, marked.queries, marked.qrels) == (
        plain.corpus,
        plain.queries,
        plain.qrels,
    )
    assert list(json_lines([BOM + '"text"'], "stdin")) == [(1, "text")]
    assert parse_qrels([BOM + "q1\td1\t1"]) == {"q1": {"d1": 1}}
    assert parse_trec_run([BOM + "q1 Q0 d1 1 2.5 bm25"]) == {"q1": {"d1": 2.5}}
    run = tmp_path / "run.trec"
    run.write_text(BOM + "q1 Q0 d2 1 3.0 bm25\nq2 Q0 d1 1 2.0 bm25\n", encoding="utf-8")
    assert _eval("--data", str(tmp_path / "marked"), "--run", str(run)) == 0
    docs = tmp_path / "docs.jsonl"
    docs.write_text(BOM + '"red apple"\n"pear"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["rerank", "--query", "apple", "--docs", str(docs), "--reranker", "keyword:"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["document"] == "red apple"
