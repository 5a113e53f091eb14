"""ONNX Runtime backend: parity with PyTorch, the export cache, int8/bf16 ranking fidelity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from conftest import TRAINED_CE, DL19Inputs, requires_shared, requires_trained_ce  # noqa: E402
from rerankkit.backends import _onnx  # noqa: E402
from rerankkit.backends._onnx import OnnxRunner, ensure_onnx_model, model_files_digest  # noqa: E402
from rerankkit.errors import ModelLoadError  # noqa: E402

QUERY = "how do solar panels make electricity"
DOCUMENTS = [
    "Photovoltaic cells turn sunlight into a direct current.",
    "A recipe.",
    "The stock market fell sharply on Monday after the central bank raised interest rates again.",
    "Solar panels are made of silicon cells; light knocks electrons loose and a current flows.",
    "",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the module, so each tiny model is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The ONNX files this test exports (each call of the private exporter, counted)."""
    written: list[Path] = []
    export = _onnx._export

    def counted(model_dir: Path, path: Path, *args: object) -> None:
        written.append(path)
        export(model_dir, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_onnx, "_export", counted)
    return written


def _torch_logits(model_dir: Path, batch: dict[str, np.ndarray]) -> np.ndarray:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.float32
    ).eval()
    with torch.inference_mode():
        out = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits
    return out.float().numpy()


def _batch(model_dir: Path) -> dict[str, np.ndarray]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer([QUERY] * len(DOCUMENTS), DOCUMENTS, padding=True, return_tensors="np")
    return {k: np.asarray(v, dtype=np.int64) for k, v in encoded.items()}


@pytest.mark.parametrize("fixture", ["tiny_cross_encoder", "tiny_two_label_cross_encoder"])
def test_onnx_runner_matches_torch_fp32(
    fixture: str, request: pytest.FixtureRequest, onnx_cache: Path
) -> None:
    model_dir = request.getfixturevalue(fixture)
    batch = _batch(model_dir)
    assert batch["attention_mask"].min() == 0  # the batch is padded: masks must be honoured
    runner = OnnxRunner(ensure_onnx_model(model_dir, cache_dir=onnx_cache), num_threads=1)
    got = runner(batch)
    expected = _torch_logits(model_dir, batch)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_export_cache_is_reused_and_int8_derives_from_it(
    tiny_cross_encoder: Path, tmp_path: Path, exports: list[Path]
) -> None:
    first = ensure_onnx_model(tiny_cross_encoder, cache_dir=tmp_path)
    assert len(exports) == 1
    stamp = first.stat().st_mtime_ns
    again = ensure_onnx_model(tiny_cross_encoder, cache_dir=tmp_path)
    int8 = ensure_onnx_model(tiny_cross_encoder, cache_dir=tmp_path, quantize="int8")
    assert again == first
    assert first.stat().st_mtime_ns == stamp
    assert len(exports) == 1  # neither call exported again
    assert int8.parent == first.parent and int8 != first
    assert int8.stat().st_size < first.stat().st_size  # int8 weights are smaller
    assert sorted(p.name for p in first.parent.iterdir()) == ["model.int8.onnx", "model.onnx"]


def test_cache_key_follows_the_weights(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_cross_encoder, tmp_path / "copy"))
    assert model_files_digest(copy) == model_files_digest(tiny_cross_encoder)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one changed byte in the weights must change the cache entry
    weights.write_bytes(bytes(data))
    assert model_files_digest(copy) != model_files_digest(tiny_cross_encoder)


def test_digest_needs_config_and_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="weight"):
        model_files_digest(tmp_path)


def test_runner_rejects_a_batch_without_the_model_inputs(
    tiny_cross_encoder: Path, onnx_cache: Path
) -> None:
    runner = OnnxRunner(ensure_onnx_model(tiny_cross_encoder, cache_dir=onnx_cache), num_threads=1)
    with pytest.raises(KeyError, match="attention_mask"):
        runner({"input_ids": np.ones((1, 3), dtype=np.int64)})


@pytest.mark.parametrize("device", ["tpu", "mps"])
def test_runner_rejects_devices_onnx_cannot_use(
    tiny_cross_encoder: Path, onnx_cache: Path, device: str
) -> None:
    path = ensure_onnx_model(tiny_cross_encoder, cache_dir=onnx_cache)
    with pytest.raises(ValueError, match="device"):
        OnnxRunner(path, device=device)


def test_cuda_without_onnxruntime_gpu_says_what_to_install(
    tiny_cross_encoder: Path, onnx_cache: Path
) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    path = ensure_onnx_model(tiny_cross_encoder, cache_dir=onnx_cache)
    with pytest.raises(ValueError, match="onnxruntime-gpu"):
        OnnxRunner(path, device="cuda:0")


# --------------------------------------------------------------------------- through the reranker

QUERY_DOCS = [*DOCUMENTS, "Solar power plants convert light to electricity with panels."]


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RERANKKIT_CACHE", str(tmp_path))
    return tmp_path


def test_onnx_backend_scores_match_the_torch_backend(
    tiny_cross_encoder: Path, isolated_cache: Path, exports: list[Path]
) -> None:
    from rerankkit import CrossEncoderReranker

    torch_scores = CrossEncoderReranker(
        tiny_cross_encoder, device="cpu", dtype="float32", max_length=64, batch_size=3
    ).score(QUERY, QUERY_DOCS)
    onnx = CrossEncoderReranker(tiny_cross_encoder, backend="onnx", max_length=64, batch_size=3)
    np.testing.assert_allclose(onnx.score(QUERY, QUERY_DOCS), torch_scores, atol=1e-4, rtol=0)
    assert onnx.model is None and onnx.backend == "onnx"
    assert (isolated_cache / "onnx").is_dir()  # the cache went where RERANKKIT_CACHE says
    again = CrossEncoderReranker(tiny_cross_encoder, backend="onnx", max_length=64, num_threads=1)
    assert len(exports) == 1  # the second construction reused the export
    assert again._forward.session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(again.score(QUERY, QUERY_DOCS), torch_scores, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"backend": "tensorrt"}, "backend"),
        ({"quantize": "int4", "backend": "onnx"}, "quantize"),
        ({"quantize": "int8", "backend": "torch"}, "quantize"),  # int8 needs ONNX Runtime
        ({"num_threads": 0}, "num_threads"),
        ({"backend": "onnx", "dtype": "bfloat16"}, "dtype"),
    ],
)
def test_bad_speed_options_raise_naming_the_argument(
    tiny_cross_encoder: Path, isolated_cache: Path, kwargs: dict[str, object], argument: str
) -> None:
    from rerankkit import CrossEncoderReranker

    with pytest.raises(ValueError, match=argument):
        CrossEncoderReranker(tiny_cross_encoder, device="cpu", **kwargs)


def test_documented_speed_options_are_accepted(
    tiny_cross_encoder: Path, isolated_cache: Path
) -> None:
    from rerankkit import CrossEncoderReranker

    plain = CrossEncoderReranker(tiny_cross_encoder, device="cpu", backend="torch", max_length=64)
    assert (plain.backend, plain.quantize, plain.num_threads) == ("torch", None, None)
    for backend, threads in (("onnx", 3), ("auto", None)):  # quantize="int8": "auto" is ONNX
        int8 = CrossEncoderReranker(
            tiny_cross_encoder, backend=backend, quantize="int8", num_threads=threads, max_length=64
        )
        assert (int8.backend, int8.quantize, int8.num_threads) == ("onnx", "int8", threads)


def test_auto_dtype_follows_the_cpu_rule_and_float32_stays_exact(tiny_cross_encoder: Path) -> None:
    from rerankkit import CrossEncoderReranker
    from rerankkit.backends._fast_path import cpu_path_order
    from rerankkit.backends._speed import cpu_flags

    auto = CrossEncoderReranker(tiny_cross_encoder, device="cpu", dtype="auto", max_length=64)
    assert auto.cpu_path in cpu_path_order(cpu_flags(), onnx=True, openvino=True)
    # A random tiny model's scores are too close together for bf16: the probe sends it to an
    # exact float32 path (tests/test_speed_default.py covers the rule and the fallback).
    assert auto.dtype == torch.float32
    exact = CrossEncoderReranker(tiny_cross_encoder, device="cpu", dtype="float32", max_length=64)
    assert exact.dtype == torch.float32 and exact.cpu_path == "torch-float32"
    assert next(exact.model.parameters()).dtype == torch.float32


# --------------------------------------------------------------------------- fidelity, real model


@pytest.mark.slow
@requires_shared
@requires_trained_ce
def test_bf16_keeps_and_int8_nearly_keeps_the_ranking_of_the_trained_ce(
    conversion_cache: Path, dl19: DL19Inputs, dl19_ce_scores: dict[str, dict[str, float]]
) -> None:
    from scipy.stats import spearmanr

    from rerankkit import CrossEncoderReranker

    cases = dl19.first_judged(2, 50)  # the first two judged queries, no pick

    def scores(**kwargs: object) -> list[np.ndarray]:
        reranker = CrossEncoderReranker(TRAINED_CE, max_length=512, **kwargs)
        return [np.asarray(reranker.score(*dl19.texts(qid, ids))) for qid, ids in cases]

    # The exact float32 scores (max_length 512), computed once per session.
    reference = [np.asarray([dl19_ce_scores[qid][d] for d in ids]) for qid, ids in cases]
    # bf16 keeps the ranking (the dtype="auto" bar). Dynamic int8 is close but not that close:
    # on the first 8 DL19 queries its Spearman against fp32 averaged 0.985 (min 0.948), which
    # BENCHMARKS.md reports; it is opt-in for that reason, and held to a looser bar here.
    bars = {"bfloat16": 0.99, "int8": 0.94}
    runs = {
        "bfloat16": scores(device="cpu", dtype="bfloat16"),
        "int8": scores(backend="onnx", quantize="int8"),
    }
    for name, got_all in runs.items():
        for expected, got in zip(reference, got_all, strict=True):
            assert spearmanr(expected, got).statistic >= bars[name], name
            assert not np.array_equal(expected, got)  # a different computation, not a copy
