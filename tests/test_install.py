"""The quick starts run on exactly the install line printed above them (issue 27).

The wheel is built once; for each install line of the README's, ``docs/index.md``'s and
``docs/getting-started.md``'s Python blocks (``pip install "rerankkit[transformers,langchain]"``,
...) a fresh virtualenv gets the wheel with only those extras, and the blocks under that line
run there (``tests/doc_blocks.py``, offline: the hub cross-encoder becomes its copy in
``../shared``), importing rerankkit from the wheel, never from the checkout.

torch is the one thing reused: the virtualenv sees the development environment's torch (and
torch's own dependencies, nothing else) through a ``.pth`` file, and uv is told to leave torch
out of the resolution, so a fresh venv costs seconds instead of a torch download. Everything else
comes from the index through uv's cache (CI has PyPI; hub models stay unreachable).

Every other page's blocks are checked statically: each module a block imports must come with the
extras and packages of the install line above it (distributions resolved from this
environment's metadata).
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from conftest import ROOT, SHARED
from doc_blocks import Install, blocks, install_lines, pages

pytestmark = [pytest.mark.slow, pytest.mark.install]

RUN_PAGES = ("README.md", "docs/index.md", "docs/getting-started.md")
"""The first ten minutes: pages whose blocks run in a venv per install line."""


def python_blocks_by_install(page: str) -> dict[Install, list[int]]:
    lines = install_lines(ROOT / page)
    grouped: dict[Install, list[int]] = defaultdict(list)
    for block in blocks(ROOT / page):
        if block.language == "python" and block.not_tested is None:
            install = lines[block.line]
            assert install is not None, f"{block.where}: no install line above this block"
            grouped[install].append(block.line)
    return grouped


def _runs() -> dict[Install, list[str]]:
    """``{install line: ["PAGE:LINE,LINE", ...]}``: what runs in each venv."""
    runs: dict[Install, list[str]] = defaultdict(list)
    for page in RUN_PAGES:
        for install, block_lines in python_blocks_by_install(page).items():
            runs[install].append(f"{page}:{','.join(map(str, block_lines))}")
    return runs


RUNS = _runs()


# --- building the venvs ----------------------------------------------------------------------


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv is missing: bash scripts/setup.sh dev installs it (dependency group dev)")
    return found


def _distribution_roots(name: str) -> set[str]:
    """The top-level names (packages, modules, dist-info) a distribution installed."""
    roots = set()
    for file in metadata.distribution(name).files or ():
        top = file.parts[0]
        if top not in ("..", "__pycache__") and not top.endswith(".data"):
            roots.add(top)
    return roots


@pytest.fixture(scope="module")
def torch_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of links to torch and to torch's own dependencies from this environment."""
    folder = tmp_path_factory.mktemp("torch-only")
    site = Path(metadata.distribution("torch").locate_file(""))
    for name in _closure(["torch"]):
        for root in _distribution_roots(name):
            if (site / root).exists() and not (folder / root).exists():
                (folder / root).symlink_to(site / root)
    return folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    command = ["pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out)]
    subprocess.run(
        [sys.executable, "-m", *command, str(ROOT)],
        check=True,
        env={**os.environ, "TMPDIR": str(build)},
    )
    (found,) = out.glob("rerankkit-*.whl")
    return found


@pytest.fixture(scope="module")
def venvs(
    tmp_path_factory: pytest.TempPathFactory, wheel: Path, torch_only: Path
) -> dict[Install, Path]:
    """One fresh virtualenv per install line: ``{install: its python}``."""
    excludes = tmp_path_factory.mktemp("uv") / "excludes.txt"
    excludes.write_text("torch\n")
    built: dict[Install, Path] = {}
    for install in RUNS:
        venv = tmp_path_factory.mktemp("venv")
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (Path(site) / "_torch_from_dev_env.pth").write_text(f"{torch_only}\n")
        extras = f"[{','.join(install.extras)}]" if install.extras else ""
        wanted = [f"rerankkit{extras} @ {wheel.as_uri()}", *install.packages]
        done = subprocess.run(
            [_uv(), "pip", "install", "-q", "--python", python, "--excludes", excludes, *wanted],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"installing {install}:\n{done.stderr}"
        built[install] = python
    return built


# --- the checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("install", RUNS, ids=[",".join(install.extras) for install in RUNS])
def test_quick_starts_run_on_their_install_line(
    install: Install, venvs: dict[Install, Path]
) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} (the offline test cross-encoder) is absent; CI has it")
    python = venvs[install]
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PYTHONPATH")
    }
    environment |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    where = subprocess.run(
        [python, "-P", "-c", "import rerankkit; print(rerankkit.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=ROOT,
    ).stdout
    assert str(python.parent.parent) in where, f"rerankkit came from {where}, not the wheel"
    done = subprocess.run(
        [python, ROOT / "tests" / "doc_blocks.py", *RUNS[install]],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"{RUNS[install]} on {install}:\n{done.stdout}\n{done.stderr[-3000:]}"
    )


# --- every other block: its imports come with its install line --------------------------------

_ENVIRONMENT = {"extra": ""}


def _wheel_requires(wheel: Path) -> list[str]:
    """The wheel's ``Requires-Dist`` lines (extras as markers), read from its METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    return [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def _closure(requirements: list[str], ours: list[str] | None = None) -> set[str]:
    """Distribution names (normalised) that installing ``requirements`` brings, resolved from
    this environment's metadata; rerankkit's own from ``ours`` (the wheel's Requires-Dist)."""
    seen: set[str] = set()
    pending = list(requirements)
    while pending:
        requirement = Requirement(pending.pop())
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name == "rerankkit" and ours is not None:
            for line in ours:
                marker = Requirement(line).marker
                if marker is None or any(
                    marker.evaluate({**_ENVIRONMENT, "extra": extra})
                    for extra in requirement.extras
                ):
                    pending.append(line)
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            dependency = Requirement(line)
            marker = dependency.marker
            keep = marker is None or any(
                Marker(str(marker)).evaluate({**_ENVIRONMENT, "extra": extra})
                for extra in ("", *requirement.extras)
            )
            if keep:
                pending.append(line)
    return seen


def _imported_roots(code: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_every_block_imports_only_what_its_install_line_brings(wheel: Path) -> None:
    ours = _wheel_requires(wheel)
    providers = metadata.packages_distributions()
    # our own packages stand for the framework their adapter needs
    providers = {
        **providers,
        "rerankkit": ["numpy"],
        "langchain_rerankkit": ["langchain-core"],
        "llamaindex_rerankkit": ["llama-index-core"],
    }
    problems = []
    for page in pages():
        lines = install_lines(page)
        for block in blocks(page):
            install = lines[block.line]
            if block.language != "python" or install is None:
                continue
            extras = f"[{','.join(install.extras)}]" if install.extras else ""
            brought = _closure([f"rerankkit{extras}", *install.packages], ours)
            for root in _imported_roots(block.code) - set(sys.stdlib_module_names):
                dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(root, [root])}
                if not dists & brought:
                    problems.append(f"{block.where}: imports {root} ({', '.join(sorted(dists))})")
    assert not problems, "\n".join(problems)
