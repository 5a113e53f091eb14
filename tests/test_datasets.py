"""BEIR/TREC reading: pure parsers on lines, loaders on small folders, and the real sets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import DATA, requires_shared
from rerankkit.errors import DatasetError
from rerankkit.eval import Dataset, check_run, load_beir, load_trec_run
from rerankkit.eval._datasets import (
    check_qrels,
    parse_corpus,
    parse_qrels,
    parse_queries,
    parse_trec_run,
)


def jsonl(*objects: object) -> list[str]:
    return [json.dumps(obj) + "\n" for obj in objects]


# --------------------------------------------------------------------------- corpus / queries


def test_corpus_joins_title_and_text_and_reads_numeric_ids() -> None:
    lines = jsonl(
        {"_id": "d1", "title": "BM25", "text": "a ranking function"},
        {"_id": 2, "title": "", "text": "no title"},
        {"_id": "d3", "title": None, "text": "null title"},
    )
    assert parse_corpus(["\n", *lines, "   \n"]) == {
        "d1": "BM25 a ranking function",
        "2": "no title",
        "d3": "null title",
    }


def test_bad_json_names_source_and_line_number() -> None:
    lines = [*jsonl({"_id": "d1", "text": "ok"}), "\n", '{"_id": "d2", "text": "oops"\n']
    with pytest.raises(DatasetError, match=r"^corpus\.jsonl:3: invalid JSON"):
        parse_corpus(lines, source="corpus.jsonl")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('["a", "list"]', r"q\.jsonl:1: expected a JSON object, got list"),
        ('{"text": "no id"}', r'q\.jsonl:1: "_id" must be a non-empty string'),
        ('{"_id": "", "text": "empty id"}', r'"_id" must be a non-empty string'),
        ('{"_id": true, "text": "bool id"}', r'"_id" must be a non-empty string'),
        ('{"_id": "q1"}', r'q\.jsonl:1: "text" must be a string, got None'),
        ('{"_id": "q1", "text": 5}', r'"text" must be a string, got 5'),
    ],
)
def test_malformed_query_lines_are_rejected(line: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_queries([line], source="q.jsonl")


def test_duplicate_ids_are_errors_not_overwrites() -> None:
    lines = jsonl(
        {"_id": "q1", "text": "a"}, {"_id": "q2", "text": "b"}, {"_id": "q1", "text": "c"}
    )
    with pytest.raises(DatasetError, match=r"queries\.jsonl:3: duplicate query id 'q1'"):
        parse_queries(lines)
    with pytest.raises(DatasetError, match=r":2: duplicate document id '7'"):
        parse_corpus(jsonl({"_id": 7, "text": "a"}, {"_id": "7", "text": "b"}))


# --------------------------------------------------------------------------- qrels / runs


def test_qrels_header_is_optional_and_ids_may_contain_spaces() -> None:
    with_header = ["query-id\tcorpus-id\tscore\n", "q1\tlaw - act.pdf - 4\t1\n", "q1\td2\t0\n"]
    assert parse_qrels(with_header) == {"q1": {"law - act.pdf - 4": 1, "d2": 0}}
    assert parse_qrels(with_header[1:]) == parse_qrels(with_header)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["q1\td1\t1\n", "q1 d2 1\n"], r"qrels\.tsv:2: expected 3 tab-separated columns"),
        (["q1\td1\t1\n", "q1\td2\thigh\n"], r"qrels\.tsv:2: relevance grade must be an integer"),
        (["q1\td1\t1\n", "q1\td1\t2\n"], r"qrels\.tsv:2: repeated judgment for \('q1', 'd1'\)"),
        (["q1\t\t1\n"], r"qrels\.tsv:1: empty query or document id"),
    ],
)
def test_malformed_qrels_name_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_qrels(lines, source="qrels.tsv")


def test_trec_run_parsing_and_errors() -> None:
    run = parse_trec_run(["q1 Q0 d3 1 12.5 bm25\n", "\n", "q1\tQ0\td9\t2\t-1e-3\tbm25\n"])
    assert run == {"q1": {"d3": 12.5, "d9": -0.001}}
    with pytest.raises(DatasetError, match=r"r:1: .*got 7 .*document ids with spaces"):
        parse_trec_run(["q1 Q0 doc one 1 3.0 tag"], source="r")
    with pytest.raises(DatasetError, match=r"r:1: expected 6 .*got 5$"):
        parse_trec_run(["q1 Q0 d1 1 3.0"], source="r")
    with pytest.raises(DatasetError, match=r"r:2: score must be a number, got 'x'"):
        parse_trec_run(["q1 Q0 d1 1 3 t", "q1 Q0 d2 2 x t"], source="r")
    with pytest.raises(DatasetError, match=r"r:2: document 'd1' listed twice for query 'q1'"):
        parse_trec_run(["q1 Q0 d1 1 3 t", "q1 Q0 d1 2 2 t"], source="r")


def test_check_qrels_counts_unknown_queries_and_documents() -> None:
    qrels = {"q1": {"d1": 1, "dX": 2, "dY": 0}, "qX": {"d1": 1, "d2": 1}, "qY": {"d9": 1}}
    check = check_qrels(qrels, {"q1": "a", "q2": "b"}, {"d1": "x", "d2": "y"})
    assert check.judgments == 6
    assert check.unknown_queries == ("qX", "qY")
    assert check.unknown_query_judgments == 3
    assert check.unknown_document_judgments == 2  # only counted for known queries
    assert check.unknown_documents_example == ("dX", "dY")


# --------------------------------------------------------------------------- folders


def write_beir(
    root: Path,
    *,
    corpus: list[str] | None = None,
    queries: list[str] | None = None,
    qrels: list[str] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    files = {
        "corpus.jsonl": corpus
        if corpus is not None
        else jsonl(
            {"_id": "d1", "title": "", "text": "cats purr"}, {"_id": "d2", "text": "dogs bark"}
        ),
        "queries.jsonl": queries if queries is not None else jsonl({"_id": "q1", "text": "cats"}),
        "qrels/test.tsv": qrels
        if qrels is not None
        else ["query-id\tcorpus-id\tscore\n", "q1\td1\t1\n"],
    }
    for name, lines in files.items():
        (root / name).write_text("".join(lines), encoding="utf-8")
    return root


def test_load_beir_reads_a_folder(tmp_path: Path) -> None:
    data = load_beir(write_beir(tmp_path / "toy"))
    assert data.name == "toy"
    assert data.corpus == {"d1": "cats purr", "d2": "dogs bark"}
    assert data.queries == {"q1": "cats"}
    assert data.qrels == {"q1": {"d1": 1}}
    assert data.judged_query_ids == ["q1"]
    assert data.qrels_check.unknown_query_judgments == 0


def test_missing_files_are_all_named(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "toy")
    (root / "queries.jsonl").unlink()
    (root / "qrels" / "test.tsv").unlink()
    with pytest.raises(DatasetError) as error:
        load_beir(root)
    message = str(error.value)
    assert str(root / "queries.jsonl") in message
    assert str(root / "qrels" / "test.tsv") in message
    assert "corpus.jsonl" not in message.split("(")[0]  # present, so not listed as missing
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"missing file.*dev\.tsv"):
        load_beir(write_beir(tmp_path / "toy2"), split="dev")


def test_bad_json_in_a_folder_names_the_file_and_line(tmp_path: Path) -> None:
    corpus = [*jsonl({"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}), '{"_id": "d3",\n']
    root = write_beir(tmp_path / "toy", corpus=corpus)
    with pytest.raises(DatasetError, match=rf"^{root / 'corpus.jsonl'}:3: invalid JSON"):
        load_beir(root)


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "toy")
    (root / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"queries\.jsonl:1: not UTF-8 text \(byte 0xe9"):
        load_beir(root)


def test_unknown_query_and_document_judgments_are_counted_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    qrels = ["q1\td1\t1\n", "q1\tgone\t2\n", "qX\td1\t1\n", "qX\td2\t0\n"]
    with caplog.at_level(logging.WARNING, logger="rerankkit.eval._datasets"):
        data = load_beir(write_beir(tmp_path / "toy", qrels=qrels))
    assert data.qrels == {"q1": {"d1": 1, "gone": 2}}  # unknown doc kept, unknown query left out
    assert data.qrels_check.unknown_queries == ("qX",)
    assert data.qrels_check.unknown_query_judgments == 2
    assert data.qrels_check.unknown_document_judgments == 1
    messages = [record.getMessage() for record in caplog.records]
    assert any("2 judgments for 1 queries not in queries.jsonl" in m for m in messages)
    assert any("qX" in m for m in messages)
    assert any("1 of 4 judgments point at documents not in corpus.jsonl" in m for m in messages)


def test_check_run_needs_candidate_texts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = Dataset("toy", {"d1": "a"}, {"q1": "x"}, {"q1": {"d1": 1}})
    with pytest.raises(DatasetError, match=r"run\.trec: 1 candidate documents are not in"):
        check_run({"q1": {"d1": 1.0, "dZ": 0.5}}, data, source="run.trec")
    with caplog.at_level(logging.WARNING, logger="rerankkit.eval._datasets"):
        kept = check_run({"q1": {"d1": 1.0}, "qZ": {"d1": 2.0}}, data)
    assert kept == {"q1": {"d1": 1.0}}
    assert "1 queries not in queries.jsonl are ignored" in caplog.text
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 1.0 t\n")
    assert load_trec_run(path) == {"q1": {"d1": 1.0}}
    with pytest.raises(DatasetError, match="missing file"):
        load_trec_run(tmp_path / "none.trec")


# --------------------------------------------------------------------------- the real sets


@requires_shared
def test_trec_dl_2019_counts_match_its_source_notes() -> None:
    data = load_beir(DATA / "trec-dl-2019-passage")
    run = load_trec_run(DATA / "trec-dl-2019-passage" / "runs" / "bm25-top100.trec")
    # SOURCE.md: 43 queries, 4,297 passages, 9,260 judgments of which 2,257 point into the corpus.
    assert (len(data.queries), len(data.corpus)) == (43, 4297)
    assert data.qrels_check.judgments == 9260
    assert data.qrels_check.judgments - data.qrels_check.unknown_document_judgments == 2257
    assert sum(len(ranked) for ranked in run.values()) == 4300
    assert check_run(run, data).keys() == run.keys()


@requires_shared
def test_korean_ids_with_spaces_load() -> None:
    data = load_beir(DATA / "autorag-retrieval-ko")
    assert (len(data.queries), len(data.corpus), data.qrels_check.judgments) == (114, 720, 114)
    assert any(" " in doc_id for doc_id in data.corpus)
    assert data.qrels_check.unknown_document_judgments == 0
