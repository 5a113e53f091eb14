"""The first ten minutes (issue 27): long work says what it is doing, input is never rewritten,
errors name the real cause, one loaded model per spec, and no -1e30 in a user's results."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_faults_eval_cli import write_beir

from rerankkit import MissingExtraError, ModelLoadError
from rerankkit.adapting import RerankSettings
from rerankkit.adapting._settings import as_reranker
from rerankkit.cli import main
from rerankkit.errors import DatasetError
from rerankkit.eval._datasets import load_beir
from rerankkit.testing import KeywordReranker

LATIN1_LINE = '{"text": "caf\xe9 au lait"}\n'.encode("latin-1")  # é as the single byte 0xE9


@pytest.fixture
def log_file(tmp_path: Path) -> Any:
    """A file receiving every ``rerankkit`` log record at INFO (as a log file would)."""
    path = tmp_path / "rerankkit.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("rerankkit")
    saved = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield path
    finally:
        package.removeHandler(handler)
        package.setLevel(saved)
        handler.close()


# --- long work says what it is doing ------------------------------------------------------------


def test_eval_logs_its_progress_when_stderr_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_beir(tmp_path / "data")
    stderr_file = tmp_path / "stderr.log"
    with stderr_file.open("w", encoding="utf-8") as stream:
        monkeypatch.setattr(sys, "stderr", stream)  # not a terminal: no bar, log lines
        code = main(
            ["eval", "--data", str(data), "--first-stage", "bm25", "--reranker", "keyword:"]
        )
    assert code == 0
    lines = stderr_file.read_text(encoding="utf-8").splitlines()
    progress = [line for line in lines if line.startswith("INFO rerankkit.progress:")]
    assert any("2 queries to go" in line for line in progress), lines
    assert any("2/2 queries (100%)" in line and "s elapsed" in line for line in progress), lines


def test_eval_progress_is_quiet_with_q(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_beir(tmp_path / "data")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    args = ["-q", "eval", "--data", str(data), "--first-stage", "bm25", "--reranker", "keyword:"]
    assert main(args) == 0
    assert "rerankkit.progress" not in stream.getvalue()


@pytest.mark.slow
def test_first_use_on_the_pytorch_path_warns_and_names_the_faster_extra(
    tiny_cross_encoder: Path, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip install "rerankkit[transformers]" on a bf16 CPU: no ONNX Runtime or OpenVINO, so the
    default probes PyTorch bf16 against float32 on first use; the log says so."""
    import rerankkit.backends._cpu_paths as cpu_paths
    import rerankkit.backends._cross_encoder as cross_encoder
    from rerankkit import CrossEncoderReranker

    def pip_path_only(module: str) -> bool:
        return module not in ("onnxruntime", "openvino")

    monkeypatch.setattr(cross_encoder, "installed", pip_path_only)
    monkeypatch.setattr(cpu_paths, "installed", pip_path_only)
    monkeypatch.setattr(cross_encoder, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    reranker = CrossEncoderReranker(tiny_cross_encoder, allow_untrained_head=True)
    assert reranker.cpu_path is not None and reranker.cpu_path.startswith("torch")
    text = log_file.read_text(encoding="utf-8")
    assert "WARNING rerankkit.backends._cpu_paths: rerankkit: first use of" in text
    assert "checking the torch-bfloat16 path against float32" in text
    assert 'pip install "rerankkit[openvino]" for a faster CPU path' in text
    # the verdict is cached: the second construction is quiet
    log_file.write_text("", encoding="utf-8")
    CrossEncoderReranker(tiny_cross_encoder, allow_untrained_head=True)
    assert "first use" not in log_file.read_text(encoding="utf-8")


# --- non-UTF-8 input is refused, naming the file and the line -----------------------------------


def test_rerank_docs_file_with_a_latin1_byte_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes(b'"fine"\n' + LATIN1_LINE)
    assert main(["rerank", "--query", "coffee", "--docs", str(docs), "--reranker", "keyword:"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err.strip()
    assert error.count("\n") == 0  # one line
    assert f"{docs}:2: not UTF-8 text (byte 0xe9 at column 14" in error


def test_rerank_stdin_with_a_latin1_byte_is_refused_not_replaced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(LATIN1_LINE), encoding="utf-8", errors="replace")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["rerank", "--query", "coffee", "--docs", "-", "--reranker", "keyword:"]) == 2
    captured = capsys.readouterr()
    assert "\ufffd" not in captured.out and captured.out == ""
    assert "<stdin>:1: not UTF-8 text (byte 0xe9" in captured.err


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_every_dataset_file_names_the_line_of_a_non_utf8_byte(tmp_path: Path, name: str) -> None:
    data = write_beir(tmp_path / "data")
    path = data / name
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].rstrip(b"\n") + b"\xe9\n"  # a Latin-1 byte on line 2
    path.write_bytes(b"".join(lines))
    with pytest.raises(DatasetError, match=rf"{path}:2: not UTF-8 text \(byte 0xe9"):
        load_beir(data)


def test_a_trec_run_with_a_non_utf8_byte_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_beir(tmp_path / "data")
    run = tmp_path / "run.trec"
    run.write_bytes(b"q1 Q0 d1 1 2.0 bm25\nq1 Q0 d\xe92 2 1.0 bm25\n")
    assert main(["eval", "--data", str(data), "--run", str(run), "--reranker", "keyword:"]) == 2
    assert f"{run}:2: not UTF-8 text" in capsys.readouterr().err


def test_training_jsonl_with_a_non_utf8_byte_names_the_line(tmp_path: Path) -> None:
    from rerankkit.train._data import load_training_jsonl

    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"query": "q", "positive": "p", "negative": "n\xe9"}\n')
    with pytest.raises(DatasetError, match=rf"{path}:1: not UTF-8 text"):
        load_training_jsonl(path)


# --- errors that name the real cause --------------------------------------------------------------


@pytest.mark.parametrize("spec", ["./no-such-model", "/no/such/model", "~/no-such-model", "a/b/c"])
def test_a_missing_local_path_is_no_such_folder_without_touching_the_network(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rerankkit.backends._hf as hf
    from rerankkit import CrossEncoderReranker

    def no_network(*args: Any) -> bool:
        raise AssertionError("a path must not be looked up on the hub")

    monkeypatch.setattr(hf, "hub_reachable", no_network)
    with pytest.raises(ModelLoadError, match="no such folder") as raised:
        CrossEncoderReranker(spec)
    assert "hub is unreachable" not in str(raised.value) and spec in str(raised.value)


def test_model_name_none_and_empty_are_refused_naming_the_argument() -> None:
    from rerankkit import CrossEncoderReranker, EmbeddingReranker

    for cls in (CrossEncoderReranker, EmbeddingReranker):
        with pytest.raises(TypeError, match=r"model_name_or_path must be a str or os\.PathLike"):
            cls(None)
        with pytest.raises(ValueError, match="model_name_or_path must be a hub id or a folder"):
            cls("  ")


def test_onnx_without_onnxruntime_is_the_missing_extra_before_any_conversion(
    tiny_cross_encoder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rerankkit import CrossEncoderReranker

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    with (
        caplog.at_level(logging.DEBUG, logger="rerankkit"),
        pytest.raises(MissingExtraError, match=r'pip install "rerankkit\[onnx\]"'),
    ):
        CrossEncoderReranker(tiny_cross_encoder, backend="onnx")
    assert not [r for r in caplog.records if r.levelno >= logging.INFO], caplog.text


@pytest.mark.parametrize("missing", ["sentence_transformers", "datasets", "accelerate"])
def test_train_without_its_extra_writes_nothing(
    missing: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = write_beir(tmp_path / "data")
    output = tmp_path / "out"
    monkeypatch.setitem(sys.modules, missing, None)
    args = ["train", "--model", str(tmp_path), "--data", str(data), "--output", str(output)]
    assert main(args) == 2
    assert 'pip install "rerankkit[train]"' in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize("bad", [0, "3", 2.5, -1])
def test_a_bad_top_n_is_one_validation_error_whatever_its_type(bad: Any) -> None:
    with pytest.raises(ValidationError, match="top_n must be"):
        RerankSettings(reranker=KeywordReranker(), top_n=bad)
    with pytest.raises(ValidationError, match="rerank_top_n must be"):
        RerankSettings.from_stages(
            KeywordReranker(), rerank_top_n=bad, llm_reranker=KeywordReranker()
        )


# --- one loaded model per spec ------------------------------------------------------------------


@pytest.mark.slow
def test_adapters_built_from_one_spec_share_one_model(tiny_cross_encoder: Path) -> None:
    from langchain_rerankkit import RerankKitCompressor
    from llamaindex_rerankkit import RerankKitPostprocessor

    spec = f"cross-encoder:{tiny_cross_encoder}?allow_untrained_head=true&dtype=float32"
    compressor = RerankKitCompressor(reranker=spec)
    post = RerankKitPostprocessor(reranker=spec)
    assert compressor.reranker is post.reranker
    other = RerankKitCompressor(reranker=f"{spec}&max_length=64")  # other options: own model
    assert other.reranker is not compressor.reranker
    assert as_reranker(spec, share=False) is not compressor.reranker


# --- flagged documents keep a value that does not wreck averages --------------------------------


def test_flagged_documents_score_the_lowest_judged_score_in_every_adapter() -> None:
    from langchain_core.documents import Document

    from langchain_rerankkit import RerankKitCompressor

    texts = ["a cat", "", "cat cat", "a dog"]
    out = RerankKitCompressor(reranker="keyword:", top_n=None).compress_documents(
        [Document(text) for text in texts], "cat"
    )
    scores = [doc.metadata["relevance_score"] for doc in out]
    assert scores == [2.0, 1.0, 0.0, 0.0]  # keyword overlap; the empty one last at the floor
    assert out[-1].metadata == {"relevance_score": 0.0, "empty_document": True}
    assert sum(scores) / len(scores) == 0.75  # a mean in the model's range
