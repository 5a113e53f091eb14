"""Build the CPU path ``_fast_path.cpu_path_order`` proposes, after the fidelity probe approves it.

For each candidate, fastest first: build it (ONNX export/quantisation on first use, cached by
the weights' hash), score the packaged probe pairs with it and with the float32 model, and keep
it when ``_fast_path.probe_error`` is within the bar. The verdict is cached beside the converted
model, keyed by the converted file's hash (or the torch version for in-memory bf16) and the
runtime version, so a later load of the same weights trusts it without probing, and a replaced
or damaged converted file is probed again. A candidate that cannot be built or fails its probe
is logged (WARNING) and the next one is tried; the last candidate is exact and never probed.

Example (``fp32``: a loaded float32 sequence classifier; ``runner``: its torch runner)::

    chosen = pick_cpu_path(("onnx-int8", "torch-float32"), fp32, model_dir=..., tokenizer=...,
                           torch_runner=runner, max_length=512)
    chosen.name  # 'onnx-int8' when its probe passed, else 'torch-float32'
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import tempfile
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
from rerankkit.backends._onnx import (
    OnnxRunner,
    cache_entry_name,
    default_cache_dir,
    ensure_onnx_model,
    file_digest,
    model_files_digest,
    onnx_file_name,
)

logger = logging.getLogger(__name__)

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]
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
    verdict: ProbeVerdict | None = None


def pick_cpu_path(
    order: Sequence[str],
    model: Any,
    *,
    model_dir: Path | None,
    tokenizer: Any,
    torch_runner: Callable[[Any], Runner],
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
        torch_runner: Makes a runner from a torch model (the reranker's ``_torch_runner``).
        max_length: Probe pairs are truncated to this many tokens.
        num_threads: ONNX Runtime intra-op threads (``None``: physical cores).
        trust_remote_code: Passed to the ONNX export's model loading.
        cache_dir: ONNX cache root (default ``_onnx.default_cache_dir()``).
        max_error: The probe's bar (``_fast_path.PROBE_MAX_ERROR``).
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / cache_entry_name(model_files_digest(model_dir)) if model_dir else None
    reference: list[float] | None = None
    sizes: list[int] = []
    batches: list[dict[str, np.ndarray]] = []
    build = functools.partial(
        _build,
        model=model,
        model_dir=model_dir,
        root=root,
        torch_runner=torch_runner,
        num_threads=num_threads,
        trust_remote_code=trust_remote_code,
    )
    for position, name in enumerate(order):
        last = position == len(order) - 1
        if not name.startswith("torch") and (entry is None or model_dir is None):
            continue
        following = "" if last else order[position + 1]
        if last or name in EXACT_PATHS:
            exact = _try(build, name, following, copy_weights=False)
            if exact is not None:
                logger.info("rerankkit: running the %s path (exact or as requested)", name)
                return exact
            continue
        verdict = _cached_verdict(name, entry, max_error)
        if verdict is None or verdict.passed:
            chosen = _try(build, name, following, copy_weights=verdict is None)
            if chosen is None:
                continue
            if verdict is None:
                if reference is None:
                    batches, sizes = _probe_batches(tokenizer, max_length)
                    reference = _raw_scores(torch_runner(model), batches)
                value = probe_error(reference, _raw_scores(chosen.forward, batches), sizes)
                verdict = ProbeVerdict.judge(name, value, pairs=sum(sizes), max_error=max_error)
                if entry is not None:
                    _write_verdict(entry, _verdict_key(name, entry), verdict)
            if verdict.passed:
                chosen.verdict = verdict
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


def _try(
    build: Callable[..., ChosenPath], name: str, following: str, *, copy_weights: bool
) -> ChosenPath | None:
    """``build(name)``, or ``None`` with a WARNING when it fails and a ``following`` path exists
    (the last path's failure is raised: there is nothing left to fall back to)."""
    try:
        return build(name, copy_weights=copy_weights)
    except Exception as error:  # any failure of a converter or runtime: use the next path
        if not following:
            raise
        logger.warning(
            "rerankkit: the %s path could not be built (%s: %s); trying %s",
            name,
            type(error).__name__,
            error,
            following,
        )
        return None


def _build(
    name: str,
    *,
    model: Any,
    model_dir: Path | None,
    root: Path,
    torch_runner: Callable[[Any], Runner],
    num_threads: int | None,
    trust_remote_code: bool,
    copy_weights: bool,
) -> ChosenPath:
    torch = require("torch", "transformers")
    if name == "torch-float32":
        return ChosenPath(name, torch_runner(model), model, torch.float32)
    if name == "torch-bfloat16":
        from rerankkit.backends._precision import head_in_float32

        # A copy while the probe may still reject it: bf16 -> fp32 would not restore weights.
        low = (copy.deepcopy(model) if copy_weights else model).to(torch.bfloat16)
        head_in_float32(low)
        return ChosenPath(name, torch_runner(low), low, torch.bfloat16)
    quantize = _QUANTIZE.get(name)
    assert model_dir is not None
    target = root / cache_entry_name(model_files_digest(model_dir)) / onnx_file_name(quantize)
    if not target.is_file():
        logger.warning(
            "rerankkit: first use of %s on this machine: converting it for the %s path (once; "
            "cached in %s) and checking it against float32 on probe pairs",
            model_dir,
            name,
            target.parent,
        )
    path = ensure_onnx_model(
        model_dir, quantize=quantize, cache_dir=root, trust_remote_code=trust_remote_code
    )
    if name.startswith("openvino"):
        from rerankkit.backends._openvino import OpenVinoRunner

        precision = "bf16" if name == "openvino-bfloat16" else "f32"
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        return ChosenPath(
            name, OpenVinoRunner(path, precision=precision, num_threads=num_threads), None, dtype
        )
    return ChosenPath(name, OnnxRunner(path, num_threads=num_threads), None, torch.float32)


def _cached_verdict(name: str, entry: Path | None, max_error: float) -> ProbeVerdict | None:
    """The stored verdict for ``name`` if it is still valid (same file, runtime, bar)."""
    if entry is None:
        return None
    if not name.startswith("torch") and not (entry / onnx_file_name(_QUANTIZE.get(name))).is_file():
        return None  # not converted yet (or removed): nothing to trust
    verdict = _read_verdicts(entry).get(_verdict_key(name, entry))
    return verdict if verdict is not None and verdict.max_error == max_error else None


def _verdict_key(name: str, entry: Path) -> str:
    """What a verdict is valid for: the path, the converted file's bytes, the runtime version."""
    if not name.startswith("torch"):
        content = file_digest(entry / onnx_file_name(_QUANTIZE.get(name)))[:16]
        runtime = "-".join(_runtime_version(name))
    else:
        torch = require("torch", "transformers")
        content, runtime = "weights", f"torch-{torch.__version__}"
    return f"{name}|{content}|{runtime}|probe{_PROBE_VERSION}"


def _runtime_version(name: str) -> tuple[str, str]:
    if name.startswith("openvino"):
        return "openvino", str(require("openvino", "openvino").__version__)
    return "onnxruntime", str(require("onnxruntime", "onnx").__version__)


def _read_verdicts(entry: Path | None) -> dict[str, ProbeVerdict]:
    if entry is None:
        return {}
    try:
        data = json.loads((entry / VERDICTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    verdicts = {}
    for key, value in data.items() if isinstance(data, dict) else ():
        verdict = ProbeVerdict.from_json(value)
        if verdict is not None:
            verdicts[key] = verdict
    return verdicts


def _write_verdict(entry: Path, key: str, verdict: ProbeVerdict) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    data = {k: v.to_json() for k, v in _read_verdicts(entry).items()}
    data[key] = verdict.to_json()
    fd, tmp = tempfile.mkstemp(dir=entry, prefix=f".{VERDICTS_FILE}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, entry / VERDICTS_FILE)


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
        logits = np.asarray(forward(batch), dtype=np.float64)
        raw = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
        out.extend(raw.tolist())
    return out
