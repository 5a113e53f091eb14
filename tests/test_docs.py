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
it.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import functools
import inspect
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SHARED, TRAINED_CE

HUB_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
NOT_TESTED = re.compile(r"^<!--\s*not tested:\s*(?P<reason>.*?)\s*-->$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<info>[^`\n]*)$")
CALLS_RERANKKIT = re.compile(r"(^|[\s;&|(/])rerankkit\s", re.MULTILINE)
MAX_NOT_TESTED = 20
OUTPUT_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_tested: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` (in lists and admonitions too), dedented."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    position = 0
    while position < len(lines):
        opening = FENCE.match(lines[position])
        if opening is None:
            position += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        end = position + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line.removeprefix(indent) for line in lines[position + 1 : end]]
        before = next((line.strip() for line in reversed(lines[:position]) if line.strip()), "")
        marker = NOT_TESTED.match(before)
        found.append(
            Block(
                page=str(page.relative_to(ROOT)),
                line=position + 1,
                language=language,
                code="\n".join(body) + "\n",
                not_tested=marker["reason"] if marker else None,
            )
        )
        position = end + 1
    return found


def checked_blocks() -> list[Block]:
    """The blocks this test runs or lists: Python ones, and shell ones calling rerankkit."""
    return [
        block
        for page in pages()
        for block in blocks(page)
        if block.language == "python"
        or (block.language in SHELL_LANGUAGES and CALLS_RERANKKIT.search(block.code))
    ]


def not_tested_blocks() -> list[Block]:
    return [block for block in checked_blocks() if block.not_tested is not None]


def offline(code: str) -> str:
    """``code`` with the hub cross-encoder swapped for its offline copy (see the docstring)."""
    code = code.replace("CrossEncoderReranker()", f'CrossEncoderReranker("{HUB_CROSS_ENCODER}")')
    return code.replace(HUB_CROSS_ENCODER, str(TRAINED_CE))


def needs_shared(code: str) -> bool:
    return offline(code) != code or "../shared" in code


# --- running Python blocks -------------------------------------------------------------------


def stated_outputs(code: str, tree: ast.Module) -> dict[int, str]:
    """``{statement index: stated output}`` from the ``# -> `` lines after each statement."""
    lines = code.splitlines()
    statements = tree.body
    stated: dict[int, str] = {}
    for index, statement in enumerate(statements):
        end = statement.end_lineno or statement.lineno
        stop = statements[index + 1].lineno - 1 if index + 1 < len(statements) else len(lines)
        following = lines[end:stop]
        if not following or not following[0].startswith("# -> "):
            continue
        output = [following[0].removeprefix("# -> ")]
        for line in following[1:]:
            if not line.startswith("#    "):
                break
            output.append(line.removeprefix("#    "))
        stated[index] = "\n".join(output) + "\n"
    return stated


def same_output(want: str, got: str) -> bool:
    return doctest.OutputChecker().check_output(want, got, OUTPUT_FLAGS)


class PageRunner:
    """Runs one page's Python blocks in order in one namespace and one event loop."""

    def __init__(self, page: str) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.loop = asyncio.new_event_loop()
        self.page = page
        self.mismatches: list[str] = []

    def close(self) -> None:
        self.loop.close()

    def _evaluate(self, code: Any) -> Any:
        value = eval(code, self.namespace)
        if code.co_flags & inspect.CO_COROUTINE:
            value = self.loop.run_until_complete(value)
        return value

    def run(self, block: Block) -> None:
        source = offline(block.code)
        filename = f"{block.page}:{block.line}"
        tree = ast.parse(source, filename)
        stated = stated_outputs(source, tree)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        for index, statement in enumerate(tree.body):
            printed = io.StringIO()
            value = None
            with contextlib.redirect_stdout(printed):
                if isinstance(statement, ast.Expr):
                    expression = ast.Expression(statement.value)
                    value = self._evaluate(compile(expression, filename, "eval", flags=flags))
                else:
                    module = ast.Module([statement], type_ignores=[])
                    self._evaluate(compile(module, filename, "exec", flags=flags))
            if index not in stated:
                continue
            got = printed.getvalue() or ("" if value is None else repr(value) + "\n")
            line = block.line + statement.lineno
            if not same_output(stated[index], got):
                self.mismatches.append(
                    f"{block.page}:{line}: the page states\n{stated[index]}but the code gave\n{got}"
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
