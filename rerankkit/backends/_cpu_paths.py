"""Build the CPU path ``_fast_path.cpu_path_order`` proposes, after the fidelity probe approves it.

For each candidate, fastest first: build it (ONNX export/quantisation on first use, cached by
the weights' hash), score the packaged probe pairs with it and with the float32 model, and keep
it when ``_fast_path.probe_error`` is within the bar. The verdict is cached beside the converted
model, keyed by the converted file's hash (or the torch version for in-memory bf16) and the
runtime version, so a later load of the same weights trusts it without probing, and a replaced
or damaged converted file is probed again. A candidate that cannot be built or fails its probe
is logged (WARNING) and the next one is tried; the last candidate is exact and never probed.

Example (``fp32``: a loaded float32 sequence classifier)::

    chosen = pick_cpu_path(("onnx-int8", "torch-float32"), fp32, model_dir=..., tokenizer=...,
                           max_length=512)
    chosen.name  # 'onnx-int8' when its probe passed, else 'torch-float32'
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    file_digest,
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

logger = logging.getLogger(__name__)

VERDICTS_FILE = "verdicts.json"
# Bump when the probe pairs or the error measure change, so old verdicts are not trusted.
_PROBE_VERSION = 1
_QUANTIZE: dict[str, str | None] = {"onnx-int8": "int8", "onnx-float32": None}


@dataclass
class ChosenPath:
    """The path a reranker runs: its name, runner, torch model (``None`` for ONNX) and dtype."""

    name: str
    forward: Runner
    model: Any
    dtype: Any


def pick_cpu_path(
    order: Sequence[str],
    model: Any,
    *,
    model_dir: Path | None,
    tokenizer: Any,
    max_length: int,
    num_threads: int | None = None,
    trust_remote_code: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    max_error: float = PROBE_MAX_ERROR,
) -> ChosenPath:
    """The first path of ``order`` that builds and passes the probe (the last is taken as is).

    Args:
        order: From ``_fast_path.cpu_path_order``; its last entry is an exact path.
        model: The float32 torch model (eval mode, on CPU): the probe's reference, and the
            weights of the torch paths (a bf16 candidate is a copy).
        model_dir: Local model folder (ONNX export and the cache key); ``None`` when there is
            none, which leaves only the torch paths.
        tokenizer: The model's tokenizer (encodes the probe pairs).
        max_length: Probe pairs are truncated to this many tokens.
        num_threads: ONNX Runtime intra-op threads (``None``: physical cores).
        trust_remote_code: Passed to the ONNX export's model loading.
        cache_dir: ONNX cache root (default ``_onnx.default_cache_dir()``).
        max_error: The probe's bar (``_fast_path.PROBE_MAX_ERROR``).
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / cache_entry_name(model_files_digest(model_dir)) if model_dir else None

    def convert(name: str, quantize: str | None) -> Path:
        assert model_dir is not None and entry is not None  # else only torch paths are tried
        if not (entry / ONNX_FILES[quantize]).is_file():
            logger.warning(
                "rerankkit: first use of %s on this machine: converting it for the %s path "
                "(once; cached in %s) and checking it against float32 on probe pairs",
                model_dir,
                name,
                entry,
            )
        return ensure_onnx_model(
            model_dir, quantize=quantize, cache_dir=root, trust_remote_code=trust_remote_code
        )

    candidates = [name for name in order if name.startswith("torch") or entry is not None]
    reference: list[float] | None = None
    for position, name in enumerate(candidates):
        following = candidates[position + 1] if position + 1 < len(candidates) else ""
        exact = not following or name in EXACT_PATHS
        verdict = None if exact or entry is None else _cached_verdict(name, entry, max_error)
        if verdict is None or verdict.passed:
            try:
                # A copy while the probe may still reject it: bf16 -> fp32 would not restore.
                copy_weights = not exact and verdict is None
                chosen = _build(name, model, convert, num_threads, copy_weights)
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
                return chosen
            if verdict is None:
                if reference is None:
                    batches, sizes = _probe_batches(tokenizer, max_length)
                    reference = _raw_scores(TorchForward(model, "cpu", logits_output), batches)
                value = probe_error(reference, _raw_scores(chosen.forward, batches), sizes)
                verdict = ProbeVerdict.judge(name, value, pairs=sum(sizes), max_error=max_error)
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
                return chosen
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
    name: str,
    model: Any,
    convert: Callable[[str, str | None], Path],
    num_threads: int | None,
    copy_weights: bool,
) -> ChosenPath:
    torch = require("torch", "transformers")
    if name == "torch-float32":
        return ChosenPath(name, TorchForward(model, "cpu", logits_output), model, torch.float32)
    if name == "torch-bfloat16":
        from rerankkit.backends._precision import head_in_float32

        low = (copy.deepcopy(model) if copy_weights else model).to(torch.bfloat16)
        head_in_float32(low)  # bf16 logits would tie distinct documents
        return ChosenPath(name, TorchForward(low, "cpu", logits_output), low, torch.bfloat16)
    path = convert(name, _QUANTIZE.get(name))
    if name.startswith("openvino"):
        from rerankkit.backends._openvino import OpenVinoRunner

        precision = "bf16" if name == "openvino-bfloat16" else "f32"
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        runner = OpenVinoRunner(path, precision=precision, num_threads=num_threads)
        return ChosenPath(name, runner, None, dtype)
    return ChosenPath(name, OnnxRunner(path, num_threads=num_threads), None, torch.float32)


def _cached_verdict(name: str, entry: Path, max_error: float) -> ProbeVerdict | None:
    """The stored verdict for ``name`` if it is still valid (same file, runtime, bar)."""
    if not name.startswith("torch") and not (entry / ONNX_FILES[_QUANTIZE.get(name)]).is_file():
        return None  # not converted yet (or removed): nothing to trust
    verdict = _read_verdicts(entry).get(_verdict_key(name, entry))
    return verdict if verdict is not None and verdict.max_error == max_error else None


def _verdict_key(name: str, entry: Path) -> str:
    """What a verdict is valid for: the path, the converted file's bytes, the runtime version."""
    if name.startswith("torch"):
        content, runtime = "weights", f"torch-{require('torch', 'transformers').__version__}"
    else:
        content = file_digest(entry / ONNX_FILES[_QUANTIZE.get(name)])[:16]
        if name.startswith("openvino"):
            runtime = f"openvino-{require('openvino', 'openvino').__version__}"
        else:
            runtime = f"onnxruntime-{require('onnxruntime', 'onnx').__version__}"
    return f"{name}|{content}|{runtime}|probe{_PROBE_VERSION}"


def _read_verdicts(entry: Path) -> dict[str, ProbeVerdict]:
    try:
        data = json.loads((entry / VERDICTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    verdicts = {key: ProbeVerdict.from_json(value) for key, value in data.items()}
    return {key: verdict for key, verdict in verdicts.items() if verdict is not None}


def _write_verdict(entry: Path, key: str, verdict: ProbeVerdict) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    data = {k: v.to_json() for k, v in _read_verdicts(entry).items()}
    data[key] = verdict.to_json()
    text = json.dumps(data, indent=1, sort_keys=True)
    atomic_write(entry / VERDICTS_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


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
    out: list[float] = []
    for batch in batches:
        out.extend(relevance_logits(np.asarray(forward(batch), dtype=np.float64)).tolist())
    return out
