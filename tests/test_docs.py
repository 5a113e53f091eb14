"""Every code block of README.md and docs/**/*.md runs as written (issue 21).

- ```python blocks: the blocks of one page run in order in one namespace (the working folder is
  the repository root, so ``../shared/...`` paths resolve as on a developer's machine; top-level
  ``await`` works). A statement followed by comment lines ``# -> TEXT`` (continued by lines
  starting ``#    ``) states its output: what it printed, or else the ``repr`` of the
  expression's value; doctest's ELLIPSIS applies (``...`` matches anything) and whitespace
  runs compare equal.
- Shell blocks (```bash / ```console) that call ``rerankkit`` run too: in a ```console block
  the ``$ `` lines are commands (a trailing ``\\`` continues one) and the lines under a
  command are its output, compared like the Python output; a ```bash block must exit 0.
- A block that cannot run here (a paid API key, a GPU, a hub-only model, a server, minutes of
  CPU) has ``<!-- not tested: REASON -->`` on the line before it. Those are counted and listed
  (``python tests/test_docs.py`` prints them); keep them few.

The hub is unreachable in tests, so the hub id of the MiniLM-L6 MS MARCO cross-encoder is
swapped for the offline copy of the same architecture, ``../shared/models/minilm-l6-msmarco-ce``
(the pages say their outputs were measured with it), and ``CrossEncoderReranker()`` (whose
default is that hub id) gets it too. A model class built again with the same arguments reuses
the first build's loaded state, so each model loads once per session however many pages build
it. The parsing and the page runner live in ``doc_blocks`` (standard library only), which
``tests/test_install.py`` also runs in fresh virtualenvs built from the wheel.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SHARED
from doc_blocks import (
    MAX_NOT_TESTED,
    NOT_TESTED,
    SHELL_LANGUAGES,
    Block,
    PageRunner,
    blocks,
    checked_blocks,
    needs_shared,
    not_tested_blocks,
    offline,
    pages,
    same_output,
)


def _loaded_once(original: Any, loaded: dict[Any, dict[str, Any]]) -> Any:
    @functools.wraps(original)  # the signature too: specs map arguments to its parameters
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        key = (type(self), args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:  # an unhashable argument (a store, a dict): build it
            original(self, *args, **kwargs)
            return
        if key in loaded:
            self.__dict__.update(loaded[key])
            return
        original(self, *args, **kwargs)
        loaded[key] = dict(self.__dict__)

    return __init__


@contextlib.contextmanager
def models_loaded_once() -> Iterator[None]:
    """A model backend built again with the same arguments reuses the first build's state."""
    import rerankkit

    loaded: dict[Any, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CrossEncoderReranker", "EmbeddingReranker", "LateInteractionReranker"):
            cls = getattr(rerankkit, name)
            patch.setattr(cls, "__init__", _loaded_once(cls.__init__, loaded))
        yield


@pytest.fixture(scope="module")
def shared_models() -> Iterator[None]:
    with models_loaded_once():
        yield


PYTHON_PAGES = sorted(
    {
        block.page
        for block in checked_blocks()
        if block.language == "python" and not block.not_tested
    }
)


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_python_blocks_run_and_print_what_the_page_states(
    page: str, shared_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    runnable = [
        block
        for block in blocks(ROOT / page)
        if block.language == "python" and block.not_tested is None
    ]
    if any(needs_shared(block.code) for block in runnable) and not SHARED.is_dir():
        pytest.skip(f"{SHARED} (models and data beside the checkout) is absent; CI has it")
    monkeypatch.chdir(ROOT)
    runner = PageRunner(page)
    try:
        for block in runnable:
            runner.run(block)
    finally:
        runner.close()
    assert not runner.mismatches, "\n".join(runner.mismatches)


# --- running shell blocks --------------------------------------------------------------------

SHELL_BLOCKS = [
    block
    for block in checked_blocks()
    if block.language in SHELL_LANGUAGES and block.not_tested is None
]


def console_commands(code: str) -> list[tuple[str, str]]:
    """``[(command, stated output)]`` of a console block."""
    commands: list[tuple[str, list[str]]] = []
    lines = iter(code.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line.removeprefix("$ ")
            while command.endswith("\\"):
                command += "\n" + next(lines, "")
            commands.append((command, []))
        elif commands:
            commands[-1][1].append(line)
    return [(command, "\n".join(output).strip() + "\n") for command, output in commands]


def run_shell(command: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", offline(command)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[block.where for block in SHELL_BLOCKS])
def test_shell_blocks_run_and_print_what_the_page_states(block: Block) -> None:
    if needs_shared(block.code) and not SHARED.is_dir():
        pytest.skip(f"{SHARED} (models and data beside the checkout) is absent; CI has it")
    if block.language != "console":
        done = run_shell(block.code)
        assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"
        return
    commands = console_commands(block.code)
    assert commands, f"{block.where}: a console block without a '$ ' command"
    for command, stated in commands:
        done = run_shell(command)
        assert done.returncode == 0, f"{block.where}: {command}\n{done.stdout}\n{done.stderr}"
        if stated.strip():
            assert same_output(stated, done.stdout), (
                f"{block.where}: {command}\nthe page states\n{stated}but it printed\n{done.stdout}"
            )


# --- the pages themselves --------------------------------------------------------------------


def test_blocks_not_tested_are_few_and_say_why() -> None:
    untested = not_tested_blocks()
    assert all(len(block.not_tested or "") >= 10 for block in untested), [
        block.where for block in untested if len(block.not_tested or "") < 10
    ]
    assert len(untested) <= MAX_NOT_TESTED, "\n".join(
        f"{block.where}: {block.not_tested}" for block in untested
    )
    assert len(checked_blocks()) - len(untested) >= 2 * len(untested)


def test_markers_sit_right_before_a_checked_block() -> None:
    """A ``not tested`` marker anywhere else (before prose, an output block) does nothing."""
    marked = {(block.page, block.line) for block in not_tested_blocks()}
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not NOT_TESTED.match(line.strip()):
                continue
            fence = next(n for n in range(number, len(lines)) if lines[n].strip())
            where = (str(page.relative_to(ROOT)), fence + 1)
            assert where in marked, f"{where[0]}:{number}: the marker is not before a code block"


def test_readme_links_to_docs_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert targets, "the README links to the docs pages"
    missing = [target for target in targets if not (ROOT / target).is_file()]
    assert not missing, missing


def test_every_docs_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.MULTILINE))
    on_disk = {str(page.relative_to(ROOT / "docs")) for page in (ROOT / "docs").rglob("*.md")}
    assert on_disk == listed


def main() -> None:
    checked = checked_blocks()
    untested = not_tested_blocks()
    print(f"{len(checked)} code blocks checked: {len(checked) - len(untested)} run, ", end="")
    print(f"{len(untested)} not tested:")
    for block in untested:
        print(f"  {block.where} ({block.language}): {block.not_tested}")


if __name__ == "__main__":
    main()
