"""Speed helpers for the cross-encoder: CPU feature detection, threads.

Everything here is a pure function of its arguments except the few readers of the running machine
(``cpu_flags``, ``physical_core_count``, ``cpu_description``), so the rules are tested on fake
CPU descriptions.

Example:
    >>> cpu_has_fast_bf16(frozenset({"avx2", "avx512_bf16"}))
    True
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

# CPU flags (Linux /proc/cpuinfo names) that make bfloat16 matmuls fast on x86. Without one of
# them oneDNN emulates bf16 and it is slower than fp32, so "auto" must not pick it.
BF16_CPU_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_fast_bf16(flags: frozenset[str]) -> bool:
    """Whether the CPU flags include native bfloat16 matmul support (AVX512-BF16 or AMX): what
    makes bf16 a candidate of ``dtype="auto"`` on a CPU (measured against float32 before use).

    On such a CPU (AVX512-BF16) bf16 ran a MiniLM-L6 cross-encoder 2-3x faster than float32 with
    a per-query Spearman of 0.998 on average against float32 on DL19 (BENCHMARKS.md). Elsewhere
    bf16 is emulated and slower than float32, so float32.

    Example:
        >>> [cpu_has_fast_bf16(frozenset(flags)) for flags in ({"amx_bf16", "avx2"}, {"avx2"})]
        [True, False]
    """
    return bool(flags & BF16_CPU_FLAGS)


def installed(module: str) -> bool:
    """Whether ``module`` (``"onnxruntime"``, ``"openvino"``) can be imported, without importing it.

    Example:
        >>> installed("json"), installed("no_such_module_here")
        (True, False)
    """
    import importlib.util

    return importlib.util.find_spec(module) is not None


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags in the text of Linux ``/proc/cpuinfo`` (first ``flags`` line).

    Example:
        >>> sorted(parse_cpu_flags("processor : 0\\nflags : fpu avx2 avx512_bf16\\n"))
        ['avx2', 'avx512_bf16', 'fpu']
    """
    flags = _first_field(cpuinfo, {"flags", "Features"})  # "Features" on Linux/arm64
    return frozenset((flags or "").split())


def _first_field(cpuinfo: str, keys: set[str]) -> str | None:
    """The value of the first ``key : value`` line of ``cpuinfo`` whose key is in ``keys``."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in keys:
            return value.strip()
    return None


def count_physical_cores(cpuinfo: str) -> int | None:
    """Distinct (physical id, core id) pairs in ``/proc/cpuinfo`` text, or None when absent.

    Hyper-threads share a core's matmul units, so one inference thread per physical core is
    usually fastest; some VMs report no core ids, hence the None.

    Example:
        >>> text = "physical id : 0\\ncore id : 0\\n\\nphysical id : 0\\ncore id : 0\\n\\n"
        >>> count_physical_cores(text + "physical id : 0\\ncore id : 1\\n")
        2
    """
    cores: set[tuple[str, str]] = set()
    physical = ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep:
            continue
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            cores.add((physical, value.strip()))
    return len(cores) or None


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux
        return ""


def cpu_flags() -> frozenset[str]:
    """Feature flags of this machine's CPU (empty where ``/proc/cpuinfo`` does not exist)."""
    return parse_cpu_flags(_cpuinfo())


def available_cpu_count() -> int:
    """CPUs this process may run on (affinity/cgroup-aware where the OS says so)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def physical_core_count() -> int:
    """Physical cores this process can use: the default inference thread count."""
    available = available_cpu_count()
    physical = count_physical_cores(_cpuinfo())
    return max(1, min(available, physical)) if physical else available


def cpu_model_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    name = _first_field(_cpuinfo(), {"model name"})
    return name or platform.processor() or platform.machine() or "unknown CPU"


def cpu_description() -> str:
    """CPU model name and core counts, for benchmark reports and logs."""
    return (
        f"{cpu_model_name()}, {physical_core_count()} physical cores / "
        f"{available_cpu_count()} logical CPUs available"
    )


def speed_flags(flags: frozenset[str]) -> str:
    """The flags that move inference speed (AVX2, AVX-VNNI, AVX-512*, AMX*), for reports.

    Example:
        >>> speed_flags(frozenset({"sse2", "avx2", "avx512_bf16", "avx512f"}))
        'avx2 avx512_bf16 avx512f'
        >>> speed_flags(frozenset({"sse2"}))
        'none of avx2/avx_vnni/avx512*/amx*'
    """
    wanted = sorted(
        f for f in flags if f.startswith(("avx512", "amx")) or f in {"avx2", "avx_vnni"}
    )
    return " ".join(wanted) or "none of avx2/avx_vnni/avx512*/amx*"
