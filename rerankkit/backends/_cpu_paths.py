"""Build the CPU path ``_fast_path.cpu_path_order`` proposes, after the fidelity probe approves it.

For each candidate, fastest first: build it (ONNX export/quantisation on first use, cached by
the weights' hash), score the packaged probe pairs with it and with the float32 model, and keep
it when ``_fast_path.probe_error`` is within the bar. The verdict is cached beside the converted
model, keyed by the converted file's hash (or the torch version for in-memory bf16) and the
runtime version, so a later load of the same weights trusts it without probing, and a replaced
or damaged converted file is probed again. A candidate that cannot be built or fails its probe
is logged (WARNING) and the next one is tried; the last candidate is exact and never probed.

Example (``fp32``: a loaded float32 sequence classifier)::

    name, runner = pick_cpu_path(("onnx-int8", "torch-float32"), fp32, model_dir=...,
                                 tokenizer=..., max_length=512)
    name  # 'onnx-int8' when its probe passed, else 'torch-float32'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from rerankkit._optional import require
from rerankkit.backends._fast_path import (
    EXACT_PATHS,
    PROBE_MAX_ERROR,
    ProbeVerdict,
    probe_error,
    probe_groups,
)
from rerankkit.backends._hf import (
    Runner,
    TorchForward,
    files_digest,
    logits_output,
    relevance_logits,
)
from rerankkit.backends._onnx import (
    ONNX_FILES,
    OnnxRunner,
    atomic_write,
    cache_entry_name,
    default_cache_dir,
    ensure_onnx_model,
    model_files_digest,
)
from rerankkit.backends._speed import installed

logger = logging.getLogger(__name__)

FASTER_CPU_PATH_HINT = (
    '. pip install "rerankkit[openvino]" for a faster CPU path (OpenVINO ran 2.4-4.4x '
    "PyTorch float32 on the MiniLM-L6 benchmark, BENCHMARKS.md)"
)
VERDICTS_FILE = "verdicts.json"
# Bump when the probe pairs or the error measure change, so old verdicts are not trusted.
_PROBE_VERSION = 1
_QUANTIZE: dict[str, str | None] = {"onnx-int8": "int8"}  # the others run the float32 file


def pick_cpu_path(
    order: Sequence[str],
    model: Any,
    *,
    model_dir: Path | None,
    tokenizer: Any,
    max_length: int,
    num_threads: int | None = None,
    trust_remote_code: bool = False,
) -> tuple[str, Runner]:
    """The first path of ``order`` that builds and passes the probe (the last is taken as is),
    and its runner: a :class:`TorchForward` (its ``model`` the float32 or a bf16 copy),
    ``OnnxRunner`` or ``OpenVinoRunner``.

    Args:
        order: From ``_fast_path.cpu_path_order``; its last entry is an exact path.
        model: The float32 torch model (eval mode, on CPU): the probe's reference, and the
            weights of the torch paths (a bf16 candidate is a copy).
        model_dir: Local model folder (ONNX export and the cache key); ``None`` when there is
            none, which leaves only the torch paths.
        tokenizer: The model's tokenizer (encodes the probe pairs).
        max_length: Probe pairs are truncated to this many tokens.
        num_threads: ONNX Runtime / OpenVINO threads (``None``: physical cores).
        trust_remote_code: Passed to the ONNX export's model loading.
    """
    entry = (
        default_cache_dir() / cache_entry_name(model_files_digest(model_dir)) if model_dir else None
    )

    # First use takes seconds to minutes (a conversion, a probe): say so, and name the faster
    # runtime when it is not installed.
    faster = "" if installed("openvino") else FASTER_CPU_PATH_HINT
    noted: list[str] = []

    def convert(name: str) -> Path:
        assert model_dir is not None and entry is not None  # else only torch paths are tried
        if not _converted_file(entry, name).is_file():
            noted.append(name)
            logger.warning(
                "rerankkit: first use of %s on this machine: converting it for the %s path "
                "(once; cached in %s) and checking it against float32 on probe pairs%s",
                model_dir,
                name,
                entry,
                faster,
            )
        return ensure_onnx_model(
            model_dir, quantize=_QUANTIZE.get(name), trust_remote_code=trust_remote_code
        )

    candidates = [name for name in order if name.startswith("torch") or entry is not None]
    reference: list[float] | None = None
    for name, following in zip(candidates, [*candidates[1:], ""], strict=True):
        exact = not following or name in EXACT_PATHS
        verdict = None if exact or entry is None else _cached_verdict(name, entry)
        if verdict is None and not exact and not noted and name.startswith("torch"):
            noted.append(name)
            logger.warning(
                "rerankkit: first use of %s on this machine: checking the %s path against "
                "float32 on probe pairs (once%s)%s",
                model_dir or "this model",
                name,
                f"; the verdict is cached in {entry}" if entry else "",
                faster,
            )
        if verdict is None or verdict.passed:
            try:
                # A copy while the probe may still reject it: bf16 -> fp32 would not restore.
                runner = _build(name, model, convert, num_threads, not exact and verdict is None)
            except Exception as error:  # any failure of a converter or runtime: use the next
                if not following:
                    raise
                logger.warning(
                    "rerankkit: the %s path could not be built (%s: %s); trying %s",
                    name,
                    type(error).__name__,
                    error,
                    following,
                )
                continue
            if exact:
                logger.info("rerankkit: running the %s path (exact or as requested)", name)
                return name, runner
            if verdict is None:
                if reference is None:
                    batches, sizes = _probe_batches(tokenizer, max_length)
                    reference = _raw_scores(TorchForward(model, "cpu", logits_output), batches)
                value = probe_error(reference, _raw_scores(runner, batches), sizes)
                verdict = ProbeVerdict.judge(name, value, pairs=sum(sizes))
                if entry is not None:
                    _write_verdict(entry, _verdict_key(name, entry), verdict)
            if verdict.passed:
                logger.info(
                    "rerankkit: running the %s path (fidelity probe: error %.4f <= %.4f on %d "
                    "pairs against float32)",
                    name,
                    verdict.error,
                    verdict.max_error,
                    verdict.pairs,
                )
                return name, runner
        logger.warning(
            "rerankkit: the %s path failed its fidelity probe against float32 (error %.4g > "
            "%.4g on %d pairs); falling back to %s. dtype='float32' selects the exact path "
            "directly.",
            name,
            verdict.error,
            verdict.max_error,
            verdict.pairs,
            following,
        )
    raise AssertionError("unreachable: the last path is always returned")  # pragma: no cover


def _build(
    name: str, model: Any, convert: Callable[[str], Path], num_threads: int | None, copy: bool
) -> Runner:
    if name == "torch-float32":
        return TorchForward(model, "cpu", logits_output)
    if name == "torch-bfloat16":
        from rerankkit.backends._precision import head_in_float32

        torch = require("torch", "transformers")
        low = (deepcopy(model) if copy else model).to(torch.bfloat16)
        head_in_float32(low)  # bf16 logits would tie distinct documents
        return TorchForward(low, "cpu", logits_output)
    if name.startswith("openvino"):
        from rerankkit.backends._openvino import OpenVinoRunner

        precision = "bf16" if name == "openvino-bfloat16" else "f32"
        return OpenVinoRunner(convert(name), precision=precision, num_threads=num_threads)
    return OnnxRunner(convert(name), num_threads=num_threads)


def _converted_file(entry: Path, name: str) -> Path:
    """The ONNX file a converted path runs (OpenVINO compiles the float32 one)."""
    return entry / ONNX_FILES[_QUANTIZE.get(name)]


def _cached_verdict(name: str, entry: Path) -> ProbeVerdict | None:
    """The stored verdict for ``name`` if it is still valid (same file, runtime, bar)."""
    if not name.startswith("torch") and not _converted_file(entry, name).is_file():
        return None  # not converted yet (or removed): nothing to trust
    verdict = read_verdicts(entry).get(_verdict_key(name, entry))
    return verdict if verdict is not None and verdict.max_error == PROBE_MAX_ERROR else None


def _verdict_key(name: str, entry: Path) -> str:
    """What a verdict is valid for: the path, the converted file's bytes, the runtime version."""
    if name.startswith("torch"):
        content, runtime = "weights", require("torch", "transformers")
    else:
        content = files_digest(entry, [_converted_file(entry, name)])[:16]
        openvino = name.startswith("openvino")
        runtime = require("openvino", "openvino") if openvino else require("onnxruntime", "onnx")
    return f"{name}|{content}|{runtime.__name__}-{runtime.__version__}|probe{_PROBE_VERSION}"


_VERDICTS = TypeAdapter(dict[str, ProbeVerdict])


def read_verdicts(entry: Path) -> dict[str, ProbeVerdict]:
    """The verdicts cached in a converted model's folder (``{}`` for a missing or damaged file:
    every path is then probed again)."""
    try:
        return _VERDICTS.validate_json((entry / VERDICTS_FILE).read_bytes())
    except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
        return {}


def _write_verdict(entry: Path, key: str, verdict: ProbeVerdict) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    text = _VERDICTS.dump_json({**read_verdicts(entry), key: verdict}, indent=1)
    atomic_write(entry / VERDICTS_FILE, lambda tmp: tmp.write_bytes(text))


def _probe_batches(
    tokenizer: Any, max_length: int
) -> tuple[list[dict[str, np.ndarray]], list[int]]:
    """One padded int64 batch per probe query, and the group sizes."""
    batches, sizes = [], []
    for query, documents in probe_groups():
        encoded = tokenizer(
            [query] * len(documents),
            documents,
            padding=True,
            truncation="longest_first",
            max_length=max_length,
            return_tensors="np",
        )
        batches.append({k: np.asarray(v, dtype=np.int64) for k, v in encoded.items()})
        sizes.append(len(documents))
    return batches, sizes


def _raw_scores(forward: Runner, batches: list[dict[str, np.ndarray]]) -> list[float]:
    """Each pair's raw relevance logit (the positive - negative logit of a 2-logit model)."""
    logits = [np.asarray(forward(batch), dtype=np.float64) for batch in batches]
    scores: list[float] = relevance_logits(np.concatenate(logits)).tolist()
    return scores
