"""The CI skip policy of the root conftest.py, run for real on sample projects in a subprocess.

Each sample project gets a copy of this repository's root ``conftest.py`` at its root (beside
its own ``pyproject.toml``), where pytest finds it by itself, so the hook under test is the
one every CI run uses, loaded the way every run loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
POLICY = ROOT / "conftest.py"

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


def pytest_in(
    cwd: Path, *args: str, ci: str | None, autoload: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a bare session: only the policy
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def sample_project(root: Path) -> Path:
    """A project laid out like this one: the policy at its root, beside its pytest config."""
    root.mkdir(exist_ok=True)
    (root / "conftest.py").write_text(POLICY.read_text())
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests", "pkg"]\naddopts = "--doctest-modules"\n'
    )
    return root


def run_sample(tmp_path: Path, source: str, *, ci: str | None) -> subprocess.CompletedProcess[str]:
    (sample_project(tmp_path) / "test_sample.py").write_text(source)
    return pytest_in(tmp_path, "test_sample.py", ci=ci)


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


ONCE = """
import os

def test_the_policy_is_registered_once_in_ci(request):
    plugins = request.config.pluginmanager.get_plugins()
    expected = 1 if os.environ.get("CI") == "true" else 0
    assert sum(type(p).__name__ == "StrictSkips" for p in plugins) == expected

def test_tests_import_their_own_conftest():
    from pathlib import Path

    from conftest import HELPER  # tests/conftest.py, not the policy at the root

    assert HELPER == Path(__file__).parent / "conftest.py"
"""


@pytest.mark.parametrize(
    ("cwd", "args"),
    [
        ("", ["pkg/mod.py"]),  # the doctests of one module: nothing under tests/ is collected
        ("pkg", ["mod.py"]),  # the same, started from inside the package
        ("", ["pkg"]),
        ("", []),  # testpaths: tests and pkg
        ("", ["tests", "pkg"]),  # conftest hooks only see their folder; the policy sees all
        ("", ["tests/test_once.py", "pkg/mod.py"]),
    ],
    ids=["module-doctests", "from-package-dir", "package", "testpaths", "both", "two-files"],
)
def test_every_invocation_gets_the_policy_once(tmp_path: Path, cwd: str, args: list[str]) -> None:
    root = sample_project(tmp_path / "project")
    (root / "tests").mkdir()
    (root / "tests" / "conftest.py").write_text(
        "from pathlib import Path\n\nHELPER = Path(__file__)\n"
    )
    (root / "tests" / "test_once.py").write_text(ONCE)
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text(DOCTEST_SKIP)
    done = pytest_in(root / cwd, *args, ci="true")
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert out.count("SKIP-FAIL pkg/mod.py::mod.f: all tests skipped by +SKIP") == 1, out
    assert out.count("skips are failures in CI") == 1, out
    assert "failed" not in done.stdout.splitlines()[-1], out  # the tests themselves pass
    outside_ci = pytest_in(root / cwd, *args, ci=None)
    assert outside_ci.returncode == pytest.ExitCode.OK, outside_ci.stdout + outside_ci.stderr


def test_this_repository_loads_the_policy_for_a_doctest_only_run() -> None:
    """``CI=true pytest rerankkit/<module>.py`` in this checkout, with its real configuration."""
    done = pytest_in(
        ROOT, "--collect-only", "-q", "--trace-config", "rerankkit/_optional.py",
        ci="true", autoload=True,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.OK, out
    assert "rerankkit/_optional.py::rerankkit._optional" in out, out  # doctests
    registered = [
        line for line in out.splitlines() if "PLUGIN registered" in line and "StrictSkips" in line
    ]
    assert len(registered) == 1, out
    assert not (TESTS / "conftest.py").read_text().count("StrictSkips"), "one copy of the policy"
