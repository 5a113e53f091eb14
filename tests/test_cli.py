"""The ``rerankkit`` command line: rerank (JSONL in/out), eval (reports, malformed data), demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from rerankkit.cli import _commands as cli
from rerankkit.cli._commands import main, read_documents
from rerankkit.errors import DatasetError
from rerankkit.testing import KeywordReranker

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    return path


def read_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# --------------------------------------------------------------------------- rerank


DOCS = [
    {"id": "a", "text": "Berlin is the capital of Germany.", "source": "wiki"},
    "Paris is the capital and largest city of France.",
    {"id": "c", "text": "France borders Spain."},
    {"id": "d", "text": "Le capital de la France est Paris (capital of France)."},
]
QUERY = "capital of France"


def test_rerank_jsonl_in_jsonl_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    assert (
        main(
            [
                "rerank",
                "--query",
                QUERY,
                "--docs",
                str(docs),
                "--reranker",
                "keyword:",
                "--top-n",
                "3",
            ]
        )
        == 0
    )
    out = read_jsonl(capsys.readouterr().out)
    texts = [d if isinstance(d, str) else d["text"] for d in DOCS]
    expected = KeywordReranker().rerank(QUERY, texts, top_n=3)
    assert [row["index"] for row in out] == [r.index for r in expected]
    assert [row["relevance_score"] for row in out] == [r.score for r in expected]
    assert [row["document"] for row in out] == [DOCS[r.index] for r in expected]  # kept whole


def test_rerank_service_failure_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    docs = write_jsonl(tmp_path / "docs.jsonl", DOCS)
    model = f"tei:http://127.0.0.1:{port}?max_retries=0"
    assert main(["rerank", "--query", QUERY, "--docs", str(docs), "--reranker", model]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rerankkit rerank: error: tei: ")
    assert "Traceback" not in err[0]


def test_rerank_threshold_text_field_and_output_file(tmp_path: Path) -> None:
    rows = [{"body": "cats purr"}, {"body": "cats and dogs purr"}, {"body": "dogs bark"}]
    docs = write_jsonl(tmp_path / "docs.jsonl", rows)
    out_path = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "rerank",
                "--query",
                "cats purr",
                "--docs",
                str(docs),
                "--reranker",
                "keyword:",
                "--text-field",
                "body",
                "--score-threshold",
                "2",
                "--output",
                str(out_path),
            ]
        )
        == 0
    )
    out = read_jsonl(out_path.read_text(encoding="utf-8"))
    assert [(row["index"], row["relevance_score"]) for row in out] == [(0, 2.0), (1, 2.0)]


def test_rerank_reads_stdin_through_python_dash_m(tmp_path: Path) -> None:
    lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in ["서울은 수도", "부산 항구"])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rerankkit",
            "rerank",
            "--query",
            "서울은 어디",
            "--docs",
            "-",
            "--reranker",
            "keyword:",
        ],
        input=lines,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = read_jsonl(done.stdout)
    assert [row["document"] for row in out] == ["서울은 수도", "부산 항구"]
    assert out[0]["relevance_score"] == 1.0


def test_read_documents_names_the_bad_line() -> None:
    with pytest.raises(DatasetError, match=r"docs:2: invalid JSON"):
        read_documents(['"ok"', "{nope"])
    with pytest.raises(
        cli.CliError,
        match=r"docs:1: expected a JSON string or an object with a "
        r"string 'text' field",
    ):
        read_documents(['{"body": "x"}'])
    with pytest.raises(cli.CliError, match=r"docs:2: .*got 42"):
        read_documents(['"ok"', "42"])


def test_rerank_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('"fine"\n\n{"text": 3}\n', encoding="utf-8")
    assert main(["rerank", "--query", "q", "--docs", str(bad), "--reranker", "keyword:"]) == 2
    err = capsys.readouterr().err
    assert f"rerankkit rerank: error: {bad}:3: expected a JSON string" in err
    assert "Traceback" not in err
    assert (
        main(["rerank", "--query", "q", "--docs", str(tmp_path / "x"), "--reranker", "keyword:"])
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    # a folder given as --docs or --output: one line, no IsADirectoryError traceback
    assert main(["rerank", "--query", "q", "--docs", str(tmp_path), "--reranker", "keyword:"]) == 2
    assert f"--docs: cannot read {tmp_path}: Is a directory" in capsys.readouterr().err
    good = tmp_path / "good.jsonl"
    good.write_text('"fine"\n', encoding="utf-8")
    for output in (tmp_path, tmp_path / "missing" / "out.jsonl"):
        rerank = ["rerank", "--query", "q", "--docs", str(good), "--reranker", "keyword:"]
        assert main([*rerank, "--output", str(output)]) == 2
        assert f"--output: cannot write {output}: " in capsys.readouterr().err
    assert main(["rerank", "--query", "q", "--docs", str(bad), "--reranker", "nope:x"]) == 2
    assert "unknown kind 'nope'" in capsys.readouterr().err
    # an option value the reranker's constructor refuses (checked before any model load)
    spec = "cross-encoder:/no/such/model?batch_size=0"
    assert main(["rerank", "--query", "q", "--docs", str(good), "--reranker", spec]) == 2
    err = capsys.readouterr().err
    assert f"reranker spec '{spec}': batch_size must be >= 1, got 0" in err
    assert "Traceback" not in err


def test_eval_refuses_a_misspelt_spec_option_before_reading_any_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data folder is empty (no BEIR collection): the spec error wins, so the spec was
    checked before anything was read."""
    argv = ["eval", "--data", str(tmp_path), "--first-stage", "bm25", "--reranker", "keyword:?x=1"]
    assert main(argv) == 2
    assert "unknown option x for KeywordReranker" in capsys.readouterr().err


def test_usage_errors_come_from_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["rerank", "--query", "q", "--docs", "d", "--reranker", "keyword:", "--top-n", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--data", "x", "--run", "r", "--first-stage", "bm25"])
    assert "not allowed with argument" in capsys.readouterr().err


# --------------------------------------------------------------------------- eval


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "d1", "title": "", "text": "red apples grow on trees"},
            {"_id": "d2", "title": "Pears", "text": "green pears are sweet"},
            {"_id": "d3", "title": "", "text": "a pear and an apple"},
            {"_id": "d4", "title": "", "text": "bananas are yellow"},
        ],
    )
    write_jsonl(
        root / "queries.jsonl",
        [
            {"_id": "q1", "text": "sweet green pear"},
            {"_id": "q2", "text": "red apple"},
            {"_id": "q3", "text": "bananas"},
        ],
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td2\t2\nq1\td3\t1\nq2\td1\t1\nq3\td4\t1\n"
        "q9\td1\t1\nq9\td2\t1\n",
        encoding="utf-8",
    )
    (root / "run.trec").write_text(
        "q1 Q0 d1 1 4 t\nq1 Q0 d3 2 3 t\nq1 Q0 d2 3 2 t\nq2 Q0 d2 1 2 t\nq2 Q0 d1 2 1 t\n"
        "q3 Q0 d1 1 5 t\nq3 Q0 d4 2 1 t\n",
        encoding="utf-8",
    )
    return root


def test_eval_writes_json_markdown_and_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_beir(tmp_path / "toy")
    out = tmp_path / "report"
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--run",
                str(data / "run.trec"),
                "--reranker",
                "keyword:",
                "--top-n",
                "3",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert "| system | nDCG@10 | MRR@10 | Recall@3 |" in stdout
    assert "| run |" in stdout and "| keyword |" in stdout

    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "toy" and report["queries"] == 3 and report["top_n"] == 3
    assert [s["name"] for s in report["systems"]] == ["run", "keyword"]
    keyword = report["systems"][1]
    assert set(keyword) == {"name", "metrics", "vs_first_stage", "timing", "per_query"}
    assert set(keyword["metrics"]) == {"nDCG@10", "MRR@10", "Recall@3"}
    assert keyword["vs_first_stage"] == {"wins": 3, "losses": 0, "ties": 0}
    assert keyword["timing"]["pairs"] == 7
    # the qrels for the unknown query q9 are counted and reported
    assert report["qrels_check"]["unknown_queries"] == ["q9"]
    assert report["qrels_check"]["unknown_query_judgments"] == 2
    markdown = (out / "report.md").read_text()
    assert "2 for queries not in queries.jsonl (ignored)" in markdown
    assert (out / "report.png").read_bytes().startswith(PNG_MAGIC)


def test_eval_with_a_built_bm25_first_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s")
    data = write_beir(tmp_path / "toy")
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--first-stage",
                "bm25",
                "--top-n",
                "2",
                "--bm25-language",
                "none",
                "--no-progress",
            ]
        )
        == 0
    )
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| bm25 |")]
    assert len(table) == 1


def test_eval_malformed_dataset_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_beir(tmp_path / "toy")
    args = ["eval", "--data", str(data), "--run", str(data / "run.trec"), "--reranker", "keyword:"]

    (data / "queries.jsonl").rename(data / "queries.bak")
    assert main(args) == 2
    assert f"missing file in {data}: {data / 'queries.jsonl'}" in capsys.readouterr().err
    (data / "queries.bak").rename(data / "queries.jsonl")

    with (data / "corpus.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"_id": "d5", "text": "unterminated}\n')
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{data / 'corpus.jsonl'}:5: invalid JSON" in err
    assert "Traceback" not in err


def test_eval_rejects_a_bad_spec_before_loading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "eval",
                "--data",
                str(tmp_path / "absent"),
                "--run",
                "r.trec",
                "--reranker",
                "cross-encoder:",
            ]
        )
        == 2
    )
    assert "cross-encoder needs a model id or path" in capsys.readouterr().err


def test_eval_run_with_documents_missing_from_the_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_beir(tmp_path / "toy")
    (data / "run.trec").write_text("q1 Q0 d1 1 4 t\nq1 Q0 d77 2 3 t\n", encoding="utf-8")
    assert main(["eval", "--data", str(data), "--run", str(data / "run.trec")]) == 2
    assert "1 candidate documents are not in the corpus of toy" in capsys.readouterr().err


# --------------------------------------------------------------------------- demo


def test_demo_flags_reach_run_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    import rerankkit.cli._demo

    calls: list[dict] = []

    def record(**kwargs: object) -> int:
        calls.append(kwargs)
        return 0

    monkeypatch.setattr(rerankkit.cli._demo, "run_demo", record)
    argv = ["demo", "--reranker", "some/ce", "--top-n", "5", "--first-stage-top-n", "20"]
    assert main(argv) == 0
    assert calls == [{"reranker": "some/ce", "top_n": 5, "first_stage_top_n": 20, "device": None}]


# --------------------------------------------------------------------------- vocabulary, errors


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["rerank", "--query", "q", "--docs", "d", "--model", "keyword:"],
            "--model was renamed --reranker",
        ),
        (
            ["eval", "--data", "d", "--first-stage", "bm25", "--depth=5"],
            "--depth was renamed --top-n",
        ),
        (["demo", "--model", "x"], "--model was renamed --reranker"),
        (["-v", "demo", "--top-k", "5"], "--top-k was renamed --top-n"),
        (["demo", "--depth", "20"], "--depth was renamed --first-stage-top-n"),
        (["train", "--eval-depth", "5"], "--eval-depth was renamed --eval-top-n"),
        (
            ["serve", "keyword:", "--port", "0"],
            "serve keyword: was renamed serve --reranker keyword:",
        ),
    ],
)
def test_old_spellings_are_refused_naming_the_new_one(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    command = next(arg for arg in argv if not arg.startswith("-"))
    assert capsys.readouterr().err == f"rerankkit {command}: error: {message}\n"


def test_a_bug_shows_its_traceback_not_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only rerankkit's own errors become one line: a ValueError from a bug propagates."""

    def broken(args: object) -> int:
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(cli, "_cmd_rerank", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["rerank", "--query", "q", "--docs", str(tmp_path), "--reranker", "keyword:"])


def test_serve_settings_read_the_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rerankkit.serve._settings import ServeSettings

    monkeypatch.setenv("RERANKKIT_API_KEY", "from-env")
    settings = ServeSettings()
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)
    assert ServeSettings(api_key="given").api_key.get_secret_value() == "given"  # type: ignore[union-attr]
    monkeypatch.setenv("RERANKKIT_API_KEY", "")
    assert ServeSettings().api_key is None


# --------------------------------------------------------------------------- the must-show
# `rerankkit eval --reranker embedding:` reproducing BM25 0.5058 and the bi-encoder's 0.6424
# nDCG@10 on all of DL19 (4,300 pairs) is checked in notebooks/04_evaluation_trec_dl.ipynb, whose
# command-line cell runs exactly that: one bi-encoder pass over DL19 per CI run, not two.
