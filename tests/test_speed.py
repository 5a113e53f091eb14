"""Pure speed helpers: CPU flag parsing, the dtype="auto" rule, threads; and the cross-encoder's
speed options, refused before any model is loaded."""

from __future__ import annotations

import pytest

from rerankkit import CrossEncoderReranker
from rerankkit.backends._speed import (
    available_cpu_count,
    count_physical_cores,
    cpu_description,
    cpu_has_fast_bf16,
    parse_cpu_flags,
    physical_core_count,
)

SAPPHIRE_RAPIDS = "processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx2 avx512f amx_bf16\n"
ZEN4 = "processor : 0\nflags : fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
SKYLAKE = "processor : 0\nflags : fpu avx2 avx512f avx512bw avx512_vnni\n"
GRAVITON = "processor : 0\nFeatures : fp asimd bf16 i8mm\n"
NEVER_LOADED = "no/such/model"  # options are refused before the model is looked for


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (SAPPHIRE_RAPIDS, True),  # AMX: dtype="auto" is bfloat16
        (ZEN4, True),  # AVX512-BF16
        (SKYLAKE, False),  # AVX-512 without bf16: emulated bf16 is slower than fp32
        (GRAVITON, False),  # arm "bf16" is not one of the x86 flags the rule trusts
        ("", False),  # no /proc/cpuinfo (macOS, Windows)
    ],
)
def test_auto_dtype_rule_on_fake_cpus(cpuinfo: str, expected: bool) -> None:
    assert cpu_has_fast_bf16(parse_cpu_flags(cpuinfo)) is expected


def test_parse_cpu_flags_reads_the_flags_line_only() -> None:
    text = "processor : 0\nmodel name : avx512_bf16 cpu\nflags : fpu avx2\n\nflags : amx_bf16\n"
    assert parse_cpu_flags(text) == frozenset({"fpu", "avx2"})
    assert parse_cpu_flags(GRAVITON) == frozenset({"fp", "asimd", "bf16", "i8mm"})


def _cpuinfo(cores: list[tuple[int, int]]) -> str:
    return "\n\n".join(
        f"processor : {n}\nphysical id : {socket}\ncore id : {core}"
        for n, (socket, core) in enumerate(cores)
    )


def test_physical_cores_count_hyperthreads_once_and_sockets_apart() -> None:
    assert count_physical_cores(_cpuinfo([(0, 0), (0, 0), (0, 1), (0, 1)])) == 2
    assert count_physical_cores(_cpuinfo([(0, 0), (1, 0), (0, 1), (1, 1)])) == 4
    assert count_physical_cores("processor : 0\nflags : fpu\n") is None


def test_this_machine_thread_default_is_within_the_available_cpus() -> None:
    assert 1 <= physical_core_count() <= available_cpu_count()
    assert "physical cores" in cpu_description()


# The speed options are checked by the constructor before anything is loaded (the accepted
# values are built in test_onnx.py, test_documented_speed_options_are_accepted).


@pytest.mark.parametrize("bad", ["tensorrt", "ONNX", None, 1])
def test_bad_backend_names_the_argument(bad: object) -> None:
    with pytest.raises(ValueError, match="backend"):
        CrossEncoderReranker(NEVER_LOADED, backend=bad)


@pytest.mark.parametrize("bad", ["int4", "INT8", True, 8])
def test_bad_quantize_names_the_argument(bad: object) -> None:
    with pytest.raises(ValueError, match="quantize"):
        CrossEncoderReranker(NEVER_LOADED, backend="onnx", quantize=bad)


def test_quantize_needs_the_onnx_backend() -> None:
    with pytest.raises(ValueError, match=r"quantize='int8' needs backend='onnx'"):
        CrossEncoderReranker(NEVER_LOADED, backend="torch", quantize="int8")


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("4", TypeError), (True, TypeError)],
)
def test_bad_num_threads_names_the_argument(bad: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="num_threads"):
        CrossEncoderReranker(NEVER_LOADED, num_threads=bad)
