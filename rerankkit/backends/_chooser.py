"""Choose the CPU path by measuring it: the fastest candidate that keeps the float32 ranking.

Which kernels are fast depends on the CPU, its load, the runtimes' versions and the model, not
on the CPU's flags alone (issue 26: on a Xeon with ``avx512_bf16`` OpenVINO bf16 ran at 0.6x
OpenVINO float32), so at first use every candidate is built, a fast (lossy) one must pass the
fidelity probe, and each is timed on the same small workload in interleaved rounds; the winner
is the fastest, with an exact path kept unless a lossy one beats it by ``MARGIN`` (a lossy path
must pay for itself; never slower than the exact path within noise). The choice is cached in
the conversion's folder, keyed by the weights, the runtimes' versions, the CPU model, the thread
count and the candidates, so a later process builds the chosen path alone without timing
anything.

Everything is injected (how a path is built, how it is probed, the workload, the clock), so the
rule is tested on fake candidates with known costs.

Example (fake candidates: ``cost`` seconds per call on a fake clock)::

    now = [0.0]
    def build(name):                     # a "runner" that advances the clock
        cost = {"slow-exact": 2.0, "fast-exact": 1.0}[name]
        return lambda: now.__setitem__(0, now[0] + cost)
    choice, runner, cached = choose_cpu_path(
        ["fast-exact", "slow-exact"], build=build, check=lambda name, runner: None,
        workload=lambda runner: runner(), pairs=10, clock=lambda: now[0],
        cache=None, key="k", exact={"fast-exact", "slow-exact"})
    choice.path, choice.pairs_per_second  # 'fast-exact', {'fast-exact': 10.0, 'slow-exact': 5.0}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter

from rerankkit.backends._fast_path import ProbeVerdict

logger = logging.getLogger(__name__)

R = TypeVar("R")

CHOICES_FILE = "cpu_path_choices.json"
# A lossy (probed) path is taken only when it beats the fastest exact path by this much: below
# it, the difference is within the noise of a short measurement and exact costs nothing.
MARGIN = 0.05
# Timed rounds per candidate after the warm-up: each candidate's best round counts (the least
# disturbed by other processes); rounds are interleaved across candidates.
ROUNDS = 3


class PathChoice(BaseModel):
    """The measured choice of a CPU path, as cached (JSON).

    Example:
        >>> choice = PathChoice(path="openvino-float32", key="k",
        ...                     pairs_per_second={"openvino-float32": 410.0,
        ...                                       "torch-float32": 250.0},
        ...                     probe_errors={"onnx-int8": 0.0776}, failed={})
        >>> choice.summary().split("; ")  # doctest: +NORMALIZE_WHITESPACE
        ['openvino-float32 (measured pairs/s: openvino-float32 410, torch-float32 250',
         'failed the fidelity probe: onnx-int8 error 0.0776)']
    """

    model_config = ConfigDict(frozen=True)

    path: str
    """The path taken."""
    key: str
    """What the choice is valid for (weights, runtimes, CPU model, threads, candidates)."""
    pairs_per_second: dict[str, float]
    """Each timed candidate's best-round speed on the workload (probe pairs)."""
    probe_errors: dict[str, float | None]
    """Lossy candidates that failed the fidelity probe, with their error (``None``: inf/NaN)."""
    failed: dict[str, str]
    """Candidates that could not be built, with the error's one-line description."""
    fingerprint: str = ""
    """What the chosen path ran (its converted file's hash): a replaced file is measured again."""

    def summary(self) -> str:
        """One line: the path taken and what was measured."""
        speeds = ", ".join(f"{p} {v:.0f}" for p, v in self.pairs_per_second.items())
        parts = [f"measured pairs/s: {speeds}"] if speeds else []
        if self.probe_errors:
            errors = ", ".join(
                f"{p} error {'inf' if e is None else f'{e:.4f}'}"
                for p, e in self.probe_errors.items()
            )
            parts.append(f"failed the fidelity probe: {errors}")
        if self.failed:
            parts.append("could not be built: " + ", ".join(self.failed))
        return f"{self.path} ({'; '.join(parts)})"


def pick_fastest(
    pairs_per_second: dict[str, float], exact: Collection[str], margin: float = MARGIN
) -> str:
    """The fastest candidate, except that a lossy one must beat the fastest exact by ``margin``.

    Args:
        pairs_per_second: Measured speed of each candidate that may be used (lossy ones have
            passed the probe); insertion order breaks ties.
        exact: The exact candidates' names.
        margin: Relative speed a lossy path needs over the fastest exact one.

    Raises:
        ValueError: No candidate.

    Example:
        >>> pick_fastest({"ov-bf16": 100.0, "ov-f32": 98.0}, exact={"ov-f32"})
        'ov-f32'
        >>> pick_fastest({"ov-bf16": 120.0, "ov-f32": 98.0}, exact={"ov-f32"})
        'ov-bf16'
    """
    if not pairs_per_second:
        raise ValueError("no candidate CPU path to choose from")
    best = max(pairs_per_second, key=lambda p: pairs_per_second[p])
    exact_speeds = {p: v for p, v in pairs_per_second.items() if p in exact}
    if best in exact or not exact_speeds:
        return best
    best_exact = max(exact_speeds, key=lambda p: exact_speeds[p])
    beats = pairs_per_second[best] >= (1 + margin) * exact_speeds[best_exact]
    return best if beats else best_exact


def time_rounds(
    runners: dict[str, R],
    workload: Callable[[R], object],
    *,
    pairs: int,
    clock: Callable[[], float] = time.perf_counter,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Pairs/s of each runner on ``workload``: one untimed warm-up call each, then ``rounds``
    interleaved timed calls (rotated order, so a burst of load hits every candidate alike);
    each runner's fastest call counts.

    Example:
        >>> now = [0.0]
        >>> runners = {"a": 2.0, "b": 0.5}   # seconds per call on a fake clock
        >>> def work(cost):
        ...     now[0] += cost
        >>> time_rounds(runners, work, pairs=10, clock=lambda: now[0])
        {'a': 5.0, 'b': 20.0}
    """
    names = list(runners)
    for name in names:
        workload(runners[name])  # warm-up: kernel selection, shape compilation, arenas
    best = dict.fromkeys(names, float("inf"))
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = clock()
            workload(runners[name])
            best[name] = min(best[name], clock() - start)
    return {name: pairs / max(seconds, 1e-9) for name, seconds in best.items()}


def read_choice(cache: Path, key: str) -> PathChoice | None:
    """The choice cached in ``cache`` for ``key`` (``None``: none, or a damaged file)."""
    return _read(cache).get(key)


def cached_choice(
    candidates: Sequence[str],
    *,
    build: Callable[[str], R],
    cache: Path | None,
    key: str,
    fingerprint: Callable[[str], str] = lambda name: "",
) -> tuple[PathChoice, R] | None:
    """The choice cached for ``key`` and its runner, built alone; ``None`` when nothing is
    cached, the cached path is not among ``candidates``, fails to build, or now runs other
    files than it was measured with (then the caller measures again).

    Arguments as :func:`choose_cpu_path`.
    """
    cached = read_choice(cache, key) if cache is not None else None
    if cached is None or cached.path not in candidates:
        return None
    try:
        runner = build(cached.path)
        same = fingerprint(cached.path) == cached.fingerprint
    except Exception as error:  # a removed or damaged conversion: measure again
        logger.warning("rerankkit: cached CPU path %s failed to build (%s)", cached.path, error)
        return None
    if not same:
        logger.warning("rerankkit: the %s path's files changed; measuring again", cached.path)
        return None
    logger.info("rerankkit: CPU path %s (cached choice)", cached.summary())
    return cached, runner


def choose_cpu_path(
    candidates: Sequence[str],
    *,
    build: Callable[[str], R],
    check: Callable[[str, R], ProbeVerdict | None],
    workload: Callable[[R], object],
    pairs: int,
    exact: Collection[str],
    cache: Path | None,
    key: str,
    fingerprint: Callable[[str], str] = lambda name: "",
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[PathChoice, R, bool]:
    """Build, probe and time ``candidates``; return the choice, its runner and whether the
    choice came from ``cache`` (then nothing was timed and only the chosen path was built).

    Args:
        candidates: Path names; flags and options have pruned them already.
        build: Builds a path's runner (may raise: that candidate is skipped, logged).
        check: The fidelity verdict of a lossy path (``None`` for an exact one, never asked).
        workload: Runs a runner on the timing workload (``pairs`` pairs).
        pairs: Pairs in the workload (for pairs/s).
        exact: Which candidates are exact.
        cache: Folder holding ``CHOICES_FILE`` (``None``: no cache, always measured).
        key: What the choice is valid for; a cached choice with another key is ignored.
        fingerprint: What a built path runs (its converted file's hash); a cached choice
            whose path now runs something else (a replaced or damaged file) is measured again.
        clock: Seconds (``time.perf_counter``; a fake one in tests).

    Raises:
        Exception: What ``build`` raised, when no candidate could be built.
    """
    found = cached_choice(candidates, build=build, cache=cache, key=key, fingerprint=fingerprint)
    if found is not None:
        return (*found, True)
    runners: dict[str, R] = {}
    errors: dict[str, float | None] = {}
    failed: dict[str, str] = {}
    last_error: Exception | None = None
    for name in candidates:
        try:
            runner = build(name)
        except Exception as error:  # any failure of a converter or runtime: skip the candidate
            logger.warning(
                "rerankkit: the %s path could not be built (%s: %s)",
                name,
                type(error).__name__,
                error,
            )
            failed[name] = f"{type(error).__name__}: {error}"[:200]
            last_error = error
            continue
        verdict = None if name in exact else check(name, runner)
        if verdict is not None and not verdict.passed:
            logger.warning(
                "rerankkit: the %s path failed its fidelity probe against float32 (error %.4g > "
                "%.4g on %d pairs); not used",
                name,
                verdict.error,
                verdict.max_error,
                verdict.pairs,
            )
            errors[name] = verdict.error if verdict.error != float("inf") else None
            continue
        runners[name] = runner
    if not runners:
        assert last_error is not None  # an exact candidate never fails its probe
        raise last_error
    speeds = (
        time_rounds(runners, workload, pairs=pairs, clock=clock)
        if len(runners) > 1
        else dict.fromkeys(runners, 0.0)  # nothing to compare: not timed
    )
    path = pick_fastest(speeds, exact)
    choice = PathChoice(
        path=path,
        key=key,
        pairs_per_second=speeds,
        probe_errors=errors,
        failed=failed,
        fingerprint=fingerprint(path),
    )
    if cache is not None:
        _write(cache, choice)
    logger.info("rerankkit: CPU path %s (measured at first use, cached)", choice.summary())
    return choice, runners[path], False


_CHOICES = TypeAdapter(dict[str, PathChoice])


def _read(folder: Path) -> dict[str, PathChoice]:
    """The cached choices (``{}`` for a missing or damaged file: measured again)."""
    try:
        return _CHOICES.validate_json((folder / CHOICES_FILE).read_bytes())
    except (OSError, ValueError):
        return {}


def _write(folder: Path, choice: PathChoice) -> None:
    from rerankkit.backends._onnx import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    text = _CHOICES.dump_json({**_read(folder), choice.key: choice}, indent=1)
    atomic_write(folder / CHOICES_FILE, lambda tmp: tmp.write_bytes(text))


def choice_key(parts: dict[str, Any]) -> str:
    """A cache key from named parts, in a stable order.

    Example:
        >>> choice_key({"weights": "ab12", "cpu": "AMD EPYC", "threads": 2})
        'cpu=AMD EPYC|threads=2|weights=ab12'
    """
    return "|".join(f"{name}={parts[name]}" for name in sorted(parts))
