"""The CI skip policy, for every pytest run in this repository.

In CI (``CI`` set to anything but ``""``/``0``/``false``/``no``/``off``) a skip is a failure,
unless its reason names a GPU/CUDA (CI has none). A missing extra (``pytest.importorskip``, at
module level or in a test), a missing ``../shared`` (skipif markers, the notebook hook of
``tests/conftest.py``) or a doctest ``+SKIP`` would otherwise turn a broken set-up into a green
run; every such skip fails the session and is listed with its reason.

Why here: pytest loads the ``conftest.py`` of the rootdir (beside ``pyproject.toml``) for every
invocation under it -- ``pytest``, ``pytest rerankkit``, ``pytest notebooks``, ``pytest
rerankkit/_specs.py`` (doctests only), ``pytest tests/test_x.py`` -- and loads it once. A
``tests/conftest.py`` is only loaded when something under ``tests/`` is collected, and a ``-p``
plugin in ``addopts`` must be importable from wherever pytest is started. Test helpers stay in
``tests/conftest.py`` (``from conftest import ...`` in tests gets that one: pytest imports the
conftest of ``tests/`` after this one). ``--noconftest`` turns the policy off, like any conftest.

Tested in ``tests/test_strict_skips.py``, which runs copies of this file in sample sessions.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

PLUGIN_NAME = "rerankkit-strict-skips"
CI_ALLOWED_SKIP = re.compile(r"\b(gpu|cuda)\b", re.IGNORECASE)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = (
        str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    )
    return reason.removeprefix("Skipped: ")


class StrictSkips:
    """Collects every skip of the session (tests, setup, collection) and fails the run in CI.

    Registered as a plugin object rather than as conftest hooks so that it sees every report
    of the session: conftest hooks only see items under their own folder.
    """

    def __init__(self) -> None:
        self.offending: list[tuple[str, str]] = []

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = _skip_reason(report)
        if not CI_ALLOWED_SKIP.search(reason):
            self.offending.append((report.nodeid or str(report.fspath), reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.offending and exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.offending:
            return
        terminalreporter.section("skips are failures in CI (CI=true)", sep="=", red=True)
        for nodeid, reason in self.offending:
            terminalreporter.line(f"SKIP-FAIL {nodeid}: {reason}")
        terminalreporter.line(
            f"{len(self.offending)} skip(s) in CI; only a reason naming a GPU/CUDA is allowed. "
            "Install everything (bash scripts/setup.sh dev) and put ../shared beside the checkout."
        )


def pytest_configure(config: pytest.Config) -> None:
    if _in_ci() and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(StrictSkips(), PLUGIN_NAME)


# --- saying what the run is doing (issue 27) ---------------------------------------------------
# ``pytest -q`` prints nothing until the first test ends, and collecting imports every module
# (torch, transformers, the frameworks) and the notebooks: a minute of silence on 2 cores. One
# line before collection and one after say what is happening; ``-qq`` hides them.


def _say(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and config.get_verbosity() > -2:
        reporter.write_line(text)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    _say(session.config, "rerankkit: collecting tests, doctests and notebooks (imports torch)...")


def pytest_collection_finish(session: pytest.Session) -> None:
    _say(
        session.config,
        f"rerankkit: {len(session.items)} items collected; the first model-backed tests load "
        "their models (session fixtures), so the first dots may take a while",
    )
