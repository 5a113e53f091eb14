"""The CI skip policy of tests/conftest.py, run for real on sample test files in a subprocess.

The sample session loads this project's ``tests/conftest.py`` as a plugin (``-p conftest``),
so the hook under test is the one every CI run uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

MISSING_IMPORT = """
import pytest

def test_needs_an_extra():
    pytest.importorskip("rerankkit_no_such_module_xyz")

def test_fine():
    pass
"""
MODULE_LEVEL_IMPORTORSKIP = """
import pytest

pytest.importorskip("rerankkit_no_such_module_xyz")

def test_never_runs():
    pass
"""
MISSING_SHARED = """
import pytest

@pytest.mark.skipif(True, reason="../shared (test data beside the checkout) is absent")
def test_needs_shared():
    pass
"""
GPU_ONLY = """
import pytest

@pytest.mark.skipif(True, reason="needs a CUDA GPU")
def test_on_gpu():
    pass

def test_gpu_inside():
    pytest.skip("no GPU here")

@pytest.mark.xfail(reason="a known bug, not a skip")
def test_known_bug():
    raise AssertionError
"""
DOCTEST_SKIP = '''
def f():
    """
    >>> 1 + 1  # doctest: +SKIP
    3
    """
'''


def run_sample(tmp_path: Path, source: str, *, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a bare session: only the plugin under test
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
         "--doctest-modules", "-rs", "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_missing_import_is_a_skip_outside_ci(tmp_path: Path) -> None:
    done = run_sample(tmp_path, MISSING_IMPORT, ci=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "SKIP-FAIL" not in done.stdout


@pytest.mark.parametrize("value", ["true", "1"])
def test_a_missing_import_fails_the_run_in_ci(tmp_path: Path, value: str) -> None:
    done = run_sample(tmp_path, MISSING_IMPORT, ci=value)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "skips are failures in CI" in done.stdout
    assert (
        "SKIP-FAIL test_sample.py::test_needs_an_extra: could not import "
        "'rerankkit_no_such_module_xyz'" in done.stdout
    ), done.stdout


def test_ci_false_is_not_ci(tmp_path: Path) -> None:
    assert run_sample(tmp_path, MISSING_IMPORT, ci="false").returncode == 0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (MODULE_LEVEL_IMPORTORSKIP, "SKIP-FAIL test_sample.py: could not import"),
        (MISSING_SHARED, "SKIP-FAIL test_sample.py::test_needs_shared: ../shared"),
        (DOCTEST_SKIP, "SKIP-FAIL test_sample.py::test_sample.f: all tests skipped by +SKIP"),
    ],
)
def test_collection_marker_and_doctest_skips_fail_in_ci(
    tmp_path: Path, source: str, expected: str
) -> None:
    outside_ci = run_sample(tmp_path, source, ci=None).returncode
    assert outside_ci in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    done = run_sample(tmp_path, source, ci="true")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout


def test_gpu_skips_and_xfails_are_allowed_in_ci(tmp_path: Path) -> None:
    done = run_sample(tmp_path, GPU_ONLY, ci="true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped, 1 xfailed" in done.stdout
    assert "SKIP-FAIL" not in done.stdout


def test_a_real_failure_keeps_its_exit_status(tmp_path: Path) -> None:
    source = MISSING_IMPORT + "\ndef test_broken():\n    raise AssertionError\n"
    done = run_sample(tmp_path, source, ci="true")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED
    assert "SKIP-FAIL test_sample.py::test_needs_an_extra" in done.stdout


def test_skips_outside_tests_folder_are_seen_in_ci(tmp_path: Path) -> None:
    # conftest hooks only see items under their own folder; the policy must also cover the
    # doctests of the packages and the notebooks, which live beside tests/.
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "tests" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(DOCTEST_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"CI": "true", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--doctest-modules",
         "tests", "pkg"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "SKIP-FAIL pkg/mod.py::mod.f: all tests skipped by +SKIP" in done.stdout, done.stdout
