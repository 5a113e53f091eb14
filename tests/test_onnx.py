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

from rerankkit import _onnx  # noqa: E402
from rerankkit._onnx import OnnxRunner, ensure_onnx_model, model_files_digest  # noqa: E402

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
    tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    before = _onnx.export_count
    first = ensure_onnx_model(tiny_cross_encoder, cache_dir=tmp_path)
    assert _onnx.export_count == before + 1
    stamp = first.stat().st_mtime_ns
    again = ensure_onnx_model(tiny_cross_encoder, cache_dir=tmp_path)
    int8 = ensure_onnx_model(tiny_cross_encoder, cache_dir=tmp_path, quantize="int8")
    assert again == first
    assert first.stat().st_mtime_ns == stamp
    assert _onnx.export_count == before + 1  # neither call exported again
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
    with pytest.raises(FileNotFoundError, match="weight"):
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
