"""ONNX Runtime backend for sequence-classification cross-encoders.

A model is exported to ONNX once, checked against PyTorch on a real batch, optionally quantised to
dynamic int8, and cached under a key made of the model files' content hash, the ONNX opset and the
quantisation, so later constructions (and other processes) load the cached file without touching
PyTorch's exporter. ``OnnxRunner`` has the same call signature as the PyTorch runner of
``CrossEncoderReranker``: a dict of int64 arrays in, float32 logits ``[batch, num_labels]`` out.

Example (``ids``, ``mask``: int64 arrays of a tokenised batch of two pairs)::

    path = ensure_onnx_model("path/to/cross-encoder", quantize="int8")
    runner = OnnxRunner(path, num_threads=4)
    runner({"input_ids": ids, "attention_mask": mask}).shape
    # (2, 1)
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rerankkit._optional import require
from rerankkit.backends._hf import Source, files_digest, load_pretrained
from rerankkit.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ONNX_OPSET = 17
# Bump when the export or quantisation recipe changes, so stale cache entries are not reused.
_RECIPE_VERSION = 2
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".index.json")
ONNX_FILES: dict[str | None, str] = {None: "model.onnx", "int8": "model.int8.onnx"}
"""File name of the model in a cache entry, by quantisation (``None``: float32)."""
# Inputs a BERT-like classifier takes, in the order the exported graph receives them.
_INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")


def default_cache_dir() -> Path:
    """Where exported models go: ``$RERANKKIT_CACHE/onnx``, else ``$XDG_CACHE_HOME/rerankkit/onnx``,
    else ``~/.cache/rerankkit/onnx``. A user's model folder and the Hugging Face cache are never
    written to."""
    root = os.environ.get("RERANKKIT_CACHE")
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rerankkit" / "onnx"


def local_model_dir(source: Source) -> Path:
    """The local folder of ``source``: itself when it is a folder, else its Hugging Face snapshot
    (config, weights and tokenizer files fetched only as ``source`` allows)."""
    if source.is_local:
        return Path(source.name).expanduser()
    hub = require("huggingface_hub", "onnx")

    def snapshot(name: str, *, trust_remote_code: bool, **kwargs: Any) -> str:
        patterns = ["*.json", "*.safetensors", "*.txt", "*.model"]
        return str(hub.snapshot_download(name, allow_patterns=patterns, **kwargs))

    folder = Path(load_pretrained(source, snapshot, "cross-encoder"))
    if not any(folder.glob("*.safetensors")):
        raise ModelLoadError(
            f"{source.name!r} has no safetensors weights; backend='onnx' exports from safetensors "
            "(use backend='torch', or convert the weights)"
        )
    return folder


def model_files_digest(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 over the names and bytes of a model folder's config and weight files.

    Raises:
        ModelLoadError: the folder has no ``config.json`` or no weight file.
    """
    folder = Path(model_dir)
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.name == "config.json" or p.name.endswith(_WEIGHT_SUFFIXES))
    )
    names = {p.name for p in files}
    if "config.json" not in names or names == {"config.json"}:
        raise ModelLoadError(f"{folder} has no config.json and weight files to export")
    return files_digest(folder, files)


def cache_entry_name(digest: str) -> str:
    """Folder name of a cache entry; the quantisation picks the file inside it.

    Example:
        >>> cache_entry_name("ab" * 32)
        'abababababababababababab-opset17-r2'
    """
    return f"{digest[:24]}-opset{ONNX_OPSET}-r{_RECIPE_VERSION}"


def ensure_onnx_model(
    model_dir: str | os.PathLike[str],
    *,
    quantize: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """Path of the ONNX file for the model in ``model_dir``, exporting it on a cache miss.

    The export loads the model with PyTorch (float32, eager attention), traces it, and checks the
    ONNX Runtime logits against PyTorch's on a padded two-pair batch; int8 is derived from the
    cached float32 file. Writes are atomic, so concurrent processes never see half a file.

    Args:
        model_dir: local Hugging Face sequence-classification folder (config, weights, tokenizer).
        quantize: ``None`` (float32) or ``"int8"`` (dynamic, per-channel weights).
        cache_dir: cache root; defaults to ``default_cache_dir()``.
        trust_remote_code: passed to transformers when the model has to be loaded for export.

    Raises:
        ModelLoadError: the exported graph disagrees with PyTorch (the file is not cached).
    """
    model_dir = Path(model_dir)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / cache_entry_name(model_files_digest(model_dir))
    target = entry / ONNX_FILES[quantize]
    if target.is_file():
        logger.debug("ONNX cache hit: %s", target)
        return target
    entry.mkdir(parents=True, exist_ok=True)
    fp32 = entry / ONNX_FILES[None]
    if not fp32.is_file():
        atomic_write(fp32, lambda tmp: _export(model_dir, tmp, trust_remote_code))
    if quantize == "int8":
        atomic_write(target, lambda tmp: quantize_int8(fp32, tmp))
    return target


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` a file beside ``target``, then rename it onto ``target`` (readers never
    see half a file; a failed write leaves ``target`` as it was)."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _logits_module(model: torch.nn.Module, names: Sequence[str]) -> Any:
    """Wrap ``model`` to take its inputs positionally, in ``names`` order, and return only the
    logits: positional inputs make the ONNX input names match the graph by construction."""
    nn = require("torch.nn", "onnx")

    class LogitsOnly(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    return LogitsOnly().eval()


def _export(model_dir: Path, path: Path, trust_remote_code: bool) -> None:
    torch = require("torch", "onnx")
    transformers = require("transformers", "onnx")

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        model_dir, trust_remote_code=trust_remote_code
    )
    # Eager attention traces to plain MatMul/Softmax, which ORT's optimiser fuses into its own
    # attention kernels; the SDPA path adds nothing once exported.
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        dtype=torch.float32,
        attn_implementation="eager",
        trust_remote_code=trust_remote_code,
    ).eval()
    example = tokenizer(
        ["what is an example query", "short"],
        ["a document that is longer than the other one, so the batch is padded", "text"],
        padding=True,
        return_tensors="pt",
    )
    names = [name for name in _INPUT_ORDER if name in example]
    inputs = tuple(example[name] for name in names)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    logger.info("Exporting %s to ONNX (opset %d): %s", model_dir, ONNX_OPSET, path)
    with warnings.catch_warnings():
        # The legacy TorchScript exporter is used on purpose (the dynamo one needs onnxscript and
        # is slower to run); the tracer warns about transformers' padding-length check, which is a
        # constant 0 for an encoder whose mask covers the whole sequence, as it always does here.
        warnings.simplefilter("ignore")
        wrapped = _logits_module(model, names)
        with torch.no_grad():
            torch.onnx.export(
                wrapped,
                inputs,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
            expected = wrapped(*inputs).float().numpy()
    got = OnnxRunner(path)({name: t.numpy() for name, t in zip(names, inputs, strict=True)})
    error = float(np.max(np.abs(got - expected)))
    if not np.isfinite(error) or error > 1e-3 * max(1.0, float(np.max(np.abs(expected)))):
        raise ModelLoadError(
            f"ONNX export of {model_dir} disagrees with PyTorch (max |diff| = {error:.3g}); "
            "use backend='torch' for this model"
        )


# Weight matrices int8 disturbs most, by node name in the exported graph: each layer's FFN
# output projection (BERT/RoBERTa/XLM-R/ELECTRA "layer.N/output/dense", ModernBERT "mlp/Wo",
# Llama-style "down_proj"), whose input is the GELU output with its rare large values, and the
# head (pooler, classifier/score). On the trained MiniLM-L6 cross-encoder keeping them in float32
# roughly halved the int8 error on the probe pairs (0.14 -> 0.08, see BENCHMARKS.md).
_SENSITIVE_PARTS = ("/output/dense/", "/mlp/Wo", "down_proj", "pooler", "classifier", "/score")


def precision_sensitive_nodes(names: Sequence[str]) -> list[str]:
    """The MatMul/Gemm node names int8 quantisation leaves in float32 (see ``_SENSITIVE_PARTS``).

    Example:
        >>> precision_sensitive_nodes([
        ...     "/model/bert/encoder/layer.0/attention/output/dense/MatMul",
        ...     "/model/bert/encoder/layer.0/output/dense/MatMul",
        ...     "/model/bert/encoder/layer.0/intermediate/dense/MatMul",
        ...     "/model/classifier/Gemm"])
        ['/model/bert/encoder/layer.0/output/dense/MatMul', '/model/classifier/Gemm']
    """
    return [
        name
        for name in names
        if any(part in name for part in _SENSITIVE_PARTS) and "/attention/" not in name
    ]


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Dynamic int8 quantisation of ``src`` into ``dst``: int8 per-channel weights for MatMul/Gemm,
    activations quantised per batch at run time (no calibration data needed), the
    precision-sensitive layers (``precision_sensitive_nodes``) kept in float32.

    Static quantisation (activation scales calibrated on DL19 pairs, QDQ) was measured too and
    rejected: Spearman 0.90 against float32 (BENCHMARKS.md).
    """
    require("onnxruntime", "onnx")
    onnx = require("onnx", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    keep = precision_sensitive_nodes([n.name for n in graph.node if n.op_type in _QUANTIZED_OPS])
    root_logger = logging.getLogger()
    level = root_logger.level
    # quantize_dynamic logs a "consider pre-processing" warning on the root logger; its shape
    # pre-processing fails on these dynamic-shape graphs and does not change the result.
    root_logger.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(
            Path(src),
            Path(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(_QUANTIZED_OPS),
            nodes_to_exclude=keep,
        )
    finally:
        root_logger.setLevel(level)


_QUANTIZED_OPS = ("MatMul", "Gemm")


class OnnxRunner:
    """Run an exported cross-encoder with ONNX Runtime: ``runner(batch) -> float32 [B, L]``.

    Args:
        path: ``.onnx`` file (from ``ensure_onnx_model``).
        num_threads: intra-op threads; ``None`` = physical cores available to this process.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (CUDA needs ``onnxruntime-gpu``), or
            ``"auto"``: CUDA when onnxruntime-gpu offers it, else the CPU.

    Example (``path`` from ``ensure_onnx_model``; ``ids``, ``mask``: int64 arrays)::

        runner = OnnxRunner(path, num_threads=2)
        runner({"input_ids": ids, "attention_mask": mask})  # float32 logits [batch, num_labels]
    """

    def __init__(
        self, path: str | os.PathLike[str], *, num_threads: int | None = None, device: str = "cpu"
    ) -> None:
        ort = require("onnxruntime", "onnx")
        from rerankkit.backends._speed import physical_core_count

        available = ort.get_available_providers()
        if device == "auto":
            device = "cuda" if "CUDAExecutionProvider" in available else "cpu"
        kind, _, index = device.partition(":")
        providers: list[Any] = ["CPUExecutionProvider"]
        if kind == "cuda" and (index == "" or index.isdigit()):
            if "CUDAExecutionProvider" not in available:
                raise ValueError(
                    f"device={device!r} with backend='onnx' needs onnxruntime-gpu "
                    "(CUDAExecutionProvider is not available)"
                )
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index or 0)}))
        elif device != "cpu":
            raise ValueError(
                f"device must be 'cpu' or 'cuda[:N]' with backend='onnx'; got {device!r}"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = num_threads or physical_core_count()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names: tuple[str, ...] = tuple(i.name for i in self.session.get_inputs())

    def __call__(self, batch: Mapping[str, Any]) -> np.ndarray:
        feeds = {name: np.asarray(batch[name], dtype=np.int64) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feeds)
        return np.asarray(logits, dtype=np.float32)
