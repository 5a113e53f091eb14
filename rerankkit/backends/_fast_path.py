"""Which CPU paths a default ``CrossEncoderReranker`` considers, and the probe that must approve
a lossy one.

Pure rules, no I/O except reading the packaged probe pairs. The CPU flags and the installed
runtimes only *prune* the candidates (a path that cannot be fast here, or cannot run, is not
tried); which candidate is taken is measured on the machine (``_chooser``), because the flags do
not say which kernels are fast: on a Xeon with ``avx512_bf16`` OpenVINO bf16 ran at 0.6x
OpenVINO float32 (issue 26). Whether a lossy candidate is trusted comes from a fidelity probe
against float32 on the real weights, because how much bf16 or int8 disturbs a ranking depends
on the model.

Candidates:

- ``openvino-bfloat16`` / ``torch-bfloat16``: bf16 matmuls (OpenVINO's precision hint; PyTorch
  bf16 weights with the head in float32), only where the CPU has native bf16 (AVX512-BF16 or
  AMX): emulated bf16 is always slower than float32. OpenVINO when installed.
- ``onnx-int8``: ONNX Runtime, int8 per-channel weights, dynamic activation scales, the FFN
  output projections and the head in float32 (``_onnx.quantize_int8``); for CPUs with int8 dot
  products (AVX-512 VNNI, AVX-VNNI, AMX-INT8) or AVX2, when OpenVINO is not installed (with
  OpenVINO it is not tried: quantising costs seconds at first use, and on the trained MiniLM-L6
  it failed the probe and ran slower than OpenVINO float32, BENCHMARKS.md).
- ``openvino-float32`` / ``onnx-float32``: fused float32 kernels, exact (max |score
  difference| to PyTorch float32 ~1e-6).
- ``torch-float32``: the reference, always a candidate (it cannot fail to build).

Example:
    >>> cpu_path_order(frozenset({"avx2", "avx512_bf16"}), onnx=True, openvino=True)
    ('openvino-bfloat16', 'openvino-float32', 'onnx-float32', 'torch-float32')
    >>> cpu_path_order(frozenset({"avx2", "avx512_vnni"}), onnx=True, openvino=False)
    ('onnx-int8', 'onnx-float32', 'torch-float32')
    >>> cpu_path_order(frozenset(), onnx=False, openvino=False)
    ('torch-float32',)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict

from rerankkit.backends._speed import cpu_has_fast_bf16

# Exact: the same scores as PyTorch float32 up to float rounding (never probed).
EXACT_PATHS: frozenset[str] = frozenset({"openvino-float32", "onnx-float32", "torch-float32"})

# x86 flags (Linux /proc/cpuinfo names) with int8 dot-product instructions that make ONNX
# Runtime's int8 MatMul faster than float32: VNNI in AVX-512 or AVX (Cascade Lake+, Zen 4+,
# Alder Lake+), AMX-INT8 (Sapphire Rapids+), and plain AVX2 (u8 x s8 via vpmaddubsw).
INT8_CPU_FLAGS: frozenset[str] = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "avx2"})

# The probe's bar: the mean over probe queries of RMS(fast - exact) / std(exact) of the logits.
# On DL19 (BENCHMARKS.md, "How the default is chosen") 1 - Spearman grew like 0.5 * error^2
# (bf16: 0.009 -> 0.9998; dynamic int8: 0.15 -> 0.989, top-10 overlap 0.90), so 0.05 keeps
# Spearman >= 0.99 and top-10 >= 0.95 with room for a probe kinder than real candidate lists.
PROBE_MAX_ERROR = 0.05


def cpu_path_order(flags: frozenset[str], *, onnx: bool, openvino: bool) -> tuple[str, ...]:
    """Candidate paths for a CPU with ``flags``: lossy ones (probed) first, then the exact ones;
    ``torch-float32`` is always last. All are measured (``_chooser``); the order only breaks
    ties.

    Args:
        flags: CPU feature flags (``_speed.cpu_flags()``).
        onnx: Whether onnxruntime is installed (``rerankkit[onnx]``).
        openvino: Whether OpenVINO is installed (``rerankkit[openvino]``; needs onnx too).

    Example:
        >>> cpu_path_order(frozenset({"avx2"}), onnx=True, openvino=True)
        ('openvino-float32', 'onnx-float32', 'torch-float32')
    """
    openvino = openvino and onnx  # OpenVINO compiles the ONNX export
    fast: list[str] = []
    if cpu_has_fast_bf16(flags):
        fast.append("openvino-bfloat16" if openvino else "torch-bfloat16")
    if onnx and not openvino and flags & INT8_CPU_FLAGS:
        fast.append("onnx-int8")
    exact = (["openvino-float32"] if openvino else []) + (["onnx-float32"] if onnx else [])
    return (*fast, *exact, "torch-float32")


def constructor_path_order(
    backend: str,
    dtype: Any,
    quantize: str | None,
    device: str,
    flags: frozenset[str],
    *,
    onnx: bool,
    openvino: bool,
    exact: bool = False,
    convertible: bool = True,
) -> tuple[str, ...] | None:
    """The CPU candidates for ``CrossEncoderReranker``'s options; ``None`` leaves the choice to
    the constructor's own branches (explicit torch/ONNX dtype or quantisation, a GPU).

    ``dtype=None``/``"auto"`` on CPU means "the fastest path that keeps the ranking": the
    candidates of ``cpu_path_order`` restricted to ``backend`` (``"auto"``: all). ``exact=True``
    keeps only the exact ones (the fastest of them is measured, as for the default; no probe
    needed). ``dtype="float32"`` alone is PyTorch float32 (sentence-transformers parity,
    no conversion). ``backend="openvino"`` always goes through here (one candidate when the
    dtype is explicit, never probed). ``convertible=False`` (a model family whose ONNX export is
    not known to work, e.g. decoder classifiers) leaves ``backend="auto"`` the torch paths.

    Raises:
        ValueError: ``backend="openvino"`` with a GPU device or a dtype it does not run;
            ``exact=True`` with a low-precision dtype or ``quantize``.

    Example:
        >>> flags = frozenset({"avx2", "avx512_bf16", "avx512_vnni"})
        >>> constructor_path_order("onnx", None, None, "cpu", flags, onnx=True, openvino=True)
        ('onnx-int8', 'onnx-float32')
        >>> constructor_path_order("torch", "auto", None, "cpu", flags, onnx=True, openvino=True)
        ('torch-bfloat16', 'torch-float32')
        >>> constructor_path_order("auto", None, None, "cpu", flags, onnx=True, openvino=True,
        ...                        exact=True)
        ('openvino-float32', 'onnx-float32', 'torch-float32')
        >>> constructor_path_order("auto", "float32", None, "cpu", flags, onnx=True, openvino=True)
        ('torch-float32',)
    """
    name = None if dtype is None or dtype == "auto" else str(dtype).removeprefix("torch.")
    if exact and (quantize is not None or name not in (None, "float32")):
        raise ValueError(
            f"exact=True runs float32; it cannot be combined with dtype={dtype!r} or "
            f"quantize={quantize!r}"
        )
    if backend == "openvino" and device != "cpu":
        raise ValueError(f"backend='openvino' runs on the CPU here; got device={device!r}")
    if backend == "openvino" and name is not None:
        if name not in ("float32", "bfloat16"):
            raise ValueError(f"dtype={dtype!r} is not available with backend='openvino'")
        return (f"openvino-{name}",)
    if backend != "openvino" and (device != "cpu" or quantize is not None):
        return None
    if name is not None and not exact:
        return ("torch-float32",) if backend == "auto" and name == "float32" else None
    if backend == "auto" and not convertible:
        backend = "torch"
    # A named backend: the candidates of a machine with only its runtime, restricted to it.
    runtimes = {"auto": (onnx, openvino), "torch": (False, False), "onnx": (True, False)}
    with_onnx, with_openvino = runtimes.get(backend, (True, True))
    order = cpu_path_order(flags, onnx=with_onnx, openvino=with_openvino)
    prefix = "" if backend == "auto" else backend
    return tuple(p for p in order if p.startswith(prefix) and (not exact or p in EXACT_PATHS))


# Model types whose ONNX export (TorchScript, opset 17) the automatic choice relies on: the BERT
# family the export was checked with. Others keep the torch paths unless a backend is named.
CONVERTIBLE_MODEL_TYPES: frozenset[str] = frozenset(
    {"bert", "roberta", "xlm-roberta", "electra", "distilbert", "camembert"}
)


def probe_error(
    reference: Sequence[float], candidate: Sequence[float], sizes: Sequence[int]
) -> float:
    """Mean over groups of RMS(candidate - reference) / std(reference), on raw logits.

    Scale-free (a model whose logits span 20 is judged like one spanning 2) and measured within
    each query's candidates, the scores a ranking compares. A group whose reference scores are
    all equal contributes its RMS difference unscaled.

    Args:
        reference: float32 logits, groups concatenated.
        candidate: The fast path's logits, same order.
        sizes: Number of pairs in each group.

    Raises:
        ValueError: The lengths do not match ``sizes``.

    Example:
        >>> probe_error([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.1], [2, 2])
        0.070711
    """
    if len(reference) != len(candidate) or sum(sizes) != len(reference):
        raise ValueError(
            f"probe sizes {list(sizes)} do not match {len(reference)} reference and "
            f"{len(candidate)} candidate scores"
        )
    bounds = np.cumsum(sizes)[:-1]
    references = np.split(np.asarray(reference), bounds)
    differences = np.split(np.subtract(candidate, reference), bounds)
    errors = []
    for ref, difference in zip(references, differences, strict=True):
        rms = np.sqrt(np.mean(difference**2))
        errors.append(rms / ref.std() if ref.std() > 0 else rms)
    error = float(np.mean(errors))
    return round(error, 6) if math.isfinite(error) else math.inf


class ProbeVerdict(BaseModel):
    """Whether a fast path kept the float32 scores on the probe, with the measured error.

    Stored as JSON beside the converted model (an infinite error is written as ``null``).

    Example:
        >>> ProbeVerdict.judge("onnx-int8", 0.02, pairs=60).passed
        True
    """

    model_config = ConfigDict(frozen=True)

    path: str
    error: Annotated[float, BeforeValidator(lambda value: math.inf if value is None else value)]
    """The probe error (``probe_error``); infinite when the path gave NaN or infinite scores."""
    max_error: float
    """The bar the error was judged against."""
    pairs: int
    passed: bool

    @classmethod
    def judge(
        cls, path: str, error: float, *, pairs: int, max_error: float = PROBE_MAX_ERROR
    ) -> ProbeVerdict:
        """The verdict for ``error`` against ``max_error`` (NaN/inf fail)."""
        finite = math.isfinite(error)
        return cls(
            path=path,
            error=error if finite else math.inf,
            max_error=max_error,
            pairs=pairs,
            passed=finite and error <= max_error,
        )


def probe_groups() -> list[tuple[str, list[str]]]:
    """The packaged probe: 10 queries x 6 documents (``probe_pairs.json``, 60 pairs)."""
    text = resources.files("rerankkit.backends").joinpath("probe_pairs.json").read_text("utf-8")
    return [(g["query"], list(g["documents"])) for g in json.loads(text)["groups"]]
