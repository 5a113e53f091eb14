"""Build the CPU paths ``_fast_path.cpu_path_order`` proposes and take the measured fastest
(``_chooser``) among those that keep the ranking.

Each candidate is built (ONNX export/quantisation on first use, cached by the weights' hash); a
lossy one scores the packaged probe pairs and is kept when ``_fast_path.probe_error`` against
the float32 model is within the bar (that verdict is cached beside the converted model, keyed by
the converted file's hash or the torch version, and the runtime version); the kept ones are timed
on the same 30 probe pairs in interleaved rounds and the fastest is taken (an exact path unless
a lossy one is ``_chooser.MARGIN`` faster). The choice is cached in the same folder, keyed by the
weights, the runtimes' versions, the CPU model and flags, the thread count and the candidates:
a later process builds the chosen path alone. A candidate that cannot be built or fails its
probe is logged (WARNING) and left out.

First use costs the conversions plus about two seconds of probing and timing for MiniLM-L6 on
two cores (each candidate runs the 30 timing pairs four times; lossy ones also the 60 probe
pairs); a cached choice costs building one path.

Example (``fp32``: a loaded float32 sequence classifier)::

    name, runner, choice = pick_cpu_path(("openvino-float32", "torch-float32"), fp32,
                                         model_dir=..., tokenizer=..., max_length=512)
    name, choice.pairs_per_second  # 'openvino-float32', {'openvino-float32': 410.2, ...}
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
from collections.abc import Callable, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from rerankkit._optional import require
from rerankkit.backends._chooser import (
    PathChoice,
    cached_choice,
    choice_key,
    choose_cpu_path,
    read_choice,
)
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
    pad_batch,
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
from rerankkit.backends._speed import cpu_flags, cpu_model_name, installed, physical_core_count
from rerankkit.errors import ModelLoadError

logger = logging.getLogger(__name__)

FASTER_CPU_PATH_HINT = (
    '. pip install "rerankkit[openvino]" for a faster CPU path (OpenVINO ran 2.4-4.4x '
    "PyTorch float32 on the MiniLM-L6 benchmark, BENCHMARKS.md)"
)
VERDICTS_FILE = "verdicts.json"
# Bump when the probe pairs or the error measure change, so old verdicts are not trusted.
_PROBE_VERSION = 1
# Bump when the timing workload or the choosing rule change, so old choices are measured again.
_CHOICE_VERSION = 2
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
    batch_size: int = 32,
    untrained: Sequence[str] = (),
) -> tuple[str, Runner, PathChoice | None]:
    """The measured fastest path of ``order`` that builds and keeps the ranking, its runner (a
    :class:`TorchForward` (its ``model`` the float32 or a bf16 copy), ``OnnxRunner`` or
    ``OpenVinoRunner``) and the choice with its measured speeds (``None`` when ``order`` left
    one candidate: nothing to choose, nothing measured or probed).

    Args:
        order: From ``_fast_path.cpu_path_order``; it holds at least one exact path.
        model: The float32 torch model (eval mode, on CPU): the probe's reference, and the
            weights of the torch paths (a bf16 candidate is a copy).
        model_dir: Local model folder (ONNX export and the cache key); ``None`` when there is
            none, which leaves only the torch paths (measured each time: nothing to key a
            cache by).
        tokenizer: The model's tokenizer (encodes the probe pairs).
        max_length: Probe pairs are truncated to this many tokens.
        num_threads: ONNX Runtime / OpenVINO threads (``None``: physical cores).
        trust_remote_code: Passed to the ONNX export's model loading.
        batch_size: Pairs per forward pass of the timing workload (the reranker's).
        untrained: The weights ``from_pretrained`` initialised at random (accepted by the
            caller): part of the cache key, so only a checkpoint that loaded whole has its
            choice reused by :func:`cached_converted_path`, which skips loading it.

    Raises:
        Exception: What building failed with, when no candidate could be built.
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
                "(once; cached in %s), then checking and timing the candidate paths%s",
                model_dir,
                name,
                entry,
                faster,
            )
        return ensure_onnx_model(
            model_dir, quantize=_QUANTIZE.get(name), trust_remote_code=trust_remote_code
        )

    candidates = [name for name in order if name.startswith("torch") or entry is not None]
    if len(candidates) == 1:
        (name,) = candidates
        logger.info("rerankkit: running the %s path (the only candidate)", name)
        return name, _build(name, model, convert, num_threads, copy=False), None
    probe: list[Any] = []  # (batches, sizes, float32 reference), computed on first need

    def check(name: str, runner: Runner) -> ProbeVerdict:
        verdict = _cached_verdict(name, entry) if entry is not None else None
        if verdict is None:
            if not probe:
                if not noted:  # no conversion said so: the probe is this first use's work
                    noted.append(name)
                    logger.warning(
                        "rerankkit: first use of %s on this machine: checking the %s path "
                        "against float32 on probe pairs and timing the candidate paths "
                        "(once%s)%s",
                        model_dir or "this model",
                        name,
                        f"; the choice is cached in {entry}" if entry else "",
                        faster,
                    )
                batches, sizes = _probe_batches(tokenizer, max_length)
                reference = _raw_scores(TorchForward(model, "cpu", logits_output), batches)
                probe.extend((batches, sizes, reference))
            batches, sizes, reference = probe
            value = probe_error(reference, _raw_scores(runner, batches), sizes)
            verdict = ProbeVerdict.judge(name, value, pairs=sum(sizes))
            if entry is not None:
                _write_verdict(entry, _verdict_key(name, entry), verdict)
        return verdict

    workload = _timing_batches(tokenizer, max_length, batch_size)
    key = _choice_key(candidates, num_threads, batch_size, max_length, untrained)
    # A bf16 torch copy: the original float32 module stays the reference and a candidate.
    copy = "torch-float32" in candidates
    choice, runner, _cached = choose_cpu_path(
        candidates,
        build=lambda name: _build(name, model, convert, num_threads, copy=copy),
        check=check,
        workload=lambda runner: [runner(batch) for batch in workload],
        pairs=sum(len(batch["input_ids"]) for batch in workload),
        exact=EXACT_PATHS,
        cache=entry,
        key=key,
        fingerprint=lambda name: _verdict_key(name, entry) if entry is not None else name,
    )
    return choice.path, runner, choice


def cached_converted_path(
    order: Sequence[str],
    *,
    model_dir: Path | None,
    max_length: int,
    num_threads: int | None = None,
    batch_size: int = 32,
) -> tuple[str, Runner, PathChoice] | None:
    """The cached choice of :func:`pick_cpu_path` for these options, built without the torch
    weights, when it is a converted path (OpenVINO or ONNX Runtime) whose file is still the
    one it was measured with; ``None`` otherwise (nothing cached, a torch path, another key,
    a changed or missing file): the caller then loads the model and calls
    :func:`pick_cpu_path`.

    A later process thus skips loading the float32 weights it would not run: the cache entry
    is named by the weights' hash and the key says they loaded whole (``untrained`` empty), so
    the trained-head check they passed holds for these bytes.

    Arguments as :func:`pick_cpu_path` (``order`` holds at least two candidates when a choice
    was measured).
    """
    if model_dir is None or len(order) < 2:
        return None
    try:
        entry = default_cache_dir() / cache_entry_name(model_files_digest(model_dir))
    except ModelLoadError:  # no weights to name an entry by: loading the model says why
        return None
    key = _choice_key(list(order), num_threads, batch_size, max_length, untrained=())
    cached = read_choice(entry, key)
    if (
        cached is None
        or cached.path.startswith("torch")
        or not _converted_file(entry, cached.path).is_file()
    ):
        return None
    found = cached_choice(
        order,
        build=lambda name: _build(
            name, None, lambda name: _converted_file(entry, name), num_threads, copy=False
        ),
        cache=entry,
        key=key,
        fingerprint=lambda name: _verdict_key(name, entry),
    )
    return None if found is None else (found[0].path, found[1], found[0])


def _choice_key(
    candidates: Sequence[str],
    num_threads: int | None,
    batch_size: int,
    max_length: int,
    untrained: Sequence[str],
) -> str:
    """What a measured choice is valid for."""
    return choice_key(
        {
            "candidates": ",".join(candidates),
            "cpu": _cpu_identity(),
            "threads": num_threads or physical_core_count(),
            "runtimes": _runtime_versions(),
            "batch_size": batch_size,
            "max_length": max_length,
            "untrained": ",".join(sorted(untrained)),
            "version": _CHOICE_VERSION,
        }
    )


def _cpu_identity() -> str:
    """The CPU model name and a short hash of its flags (VMs often report a bare family name
    such as "AMD EPYC" for CPUs with different instruction sets)."""
    flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
    return f"{cpu_model_name()}/{flags}"


@functools.cache  # packages_distributions() reads every installed RECORD: ~0.5 s a call
def _runtime_versions() -> str:
    """The versions of the runtimes that run the candidates (a new one may be faster); read
    once per process, like the runtimes themselves, which are imported once."""
    versions = []
    for name in ("torch", "onnxruntime", "openvino"):
        if installed(name):  # the distributions' versions: nothing is imported
            dists = importlib.metadata.packages_distributions().get(name, [name])
            found = [f"{dist}-{importlib.metadata.version(dist)}" for dist in sorted(set(dists))]
            versions.append("+".join(found))
    return ",".join(versions)


def _build(
    name: str, model: Any, convert: Callable[[str], Path], num_threads: int | None, *, copy: bool
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


def _timing_batches(
    tokenizer: Any, max_length: int, batch_size: int
) -> list[dict[str, np.ndarray]]:
    """The timing workload: every second probe pair by length (30 pairs from 26 to 107 tokens
    with the MiniLM tokenizer), length-sorted and padded in batches of ``batch_size``, as the
    reranker batches real pairs."""
    pairs = [(query, document) for query, documents in probe_groups() for document in documents]
    encoded = tokenizer(
        [q for q, _ in pairs],
        [d for _, d in pairs],
        truncation="longest_first",
        max_length=max_length,
    )
    rows = sorted(
        zip(encoded["input_ids"], encoded.get("token_type_ids", encoded["input_ids"]), strict=True),
        key=lambda row: len(row[0]),
    )[::2]
    batches = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        ids, mask = pad_batch([ids for ids, _ in chunk], tokenizer.pad_token_id or 0)
        batch = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in encoded:
            batch["token_type_ids"] = pad_batch([types for _, types in chunk], 0)[0]
        batches.append(batch)
    return batches


def _raw_scores(forward: Runner, batches: list[dict[str, np.ndarray]]) -> list[float]:
    """Each pair's raw relevance logit (the positive - negative logit of a 2-logit model)."""
    logits = [np.asarray(forward(batch), dtype=np.float64) for batch in batches]
    scores: list[float] = relevance_logits(np.concatenate(logits)).tolist()
    return scores
