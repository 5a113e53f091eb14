"""The code blocks of README.md and docs/**/*.md, and a runner for one page's Python blocks.

Standard library only, so a fresh virtualenv built from the wheel (``tests/test_install.py``)
runs the blocks with nothing but the extras a page's install line names::

    VENV/bin/python tests/doc_blocks.py README.md:38,63 docs/index.md:27

runs the Python blocks opening on those lines of each page, in order, in one namespace per
page, offline (see ``offline``), and exits 1 after printing every mismatch or error.
``tests/test_docs.py`` runs every page's blocks in the development environment.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import inspect
import io
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRAINED_CE = ROOT.parent / "shared" / "models" / "minilm-l6-msmarco-ce"

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


# --- install lines ---------------------------------------------------------------------------

INSTALL = re.compile(
    r'pip install "rerankkit(?:\[(?P<extras>[\w,-]*)\])?"(?P<more>(?: [\w.=<>-]+)*)'
)


@dataclass(frozen=True)
class Install:
    """What a ``pip install "rerankkit[EXTRAS]" MORE...`` line installs."""

    extras: tuple[str, ...]
    packages: tuple[str, ...]


def install_lines(page: Path) -> dict[int, Install | None]:
    """``{opening line: the install line printed above it}`` for every block of ``page``.

    A block belongs to the last ``pip install "rerankkit[...]"`` before it on the page, in
    prose or in a one-command block; a block listing several (a menu) sets none. ``None``:
    the page states no install line before the block.

    Example:
        >>> lines = install_lines(ROOT / "README.md")
        >>> lines[min(lines)] is None
        True
    """
    text = page.read_text(encoding="utf-8").splitlines()
    current: Install | None = None
    found: dict[int, Install | None] = {}
    opening = {block.line: block for block in blocks(page)}
    number = 1
    while number <= len(text):
        block = opening.get(number)
        if block is not None:
            found[number] = current
            installs = list(INSTALL.finditer(block.code))
            if len(installs) == 1:
                current = _install(installs[0])
            number += block.code.count("\n") + 2
            continue
        for match in INSTALL.finditer(text[number - 1]):
            current = _install(match)
        number += 1
    return found


def _install(match: re.Match[str]) -> Install:
    extras = tuple(sorted(filter(None, (match["extras"] or "").split(","))))
    return Install(extras, tuple(match["more"].split()))


def main(argv: list[str]) -> int:
    """Run, for each ``PAGE:LINE,LINE`` argument, the page's Python blocks opening on those
    lines (one namespace per page); print every mismatch or error; 1 if there was any."""
    mismatches: list[str] = []
    for argument in argv:
        page, _, numbers = argument.partition(":")
        lines = {int(line) for line in numbers.split(",")}
        chosen = [block for block in blocks(ROOT / page) if block.line in lines]
        if len(chosen) != len(lines):
            mismatches.append(f"{page}: no blocks open on some of lines {sorted(lines)}")
            continue
        runner = PageRunner(page)
        try:
            for block in chosen:
                try:
                    runner.run(block)
                except Exception:
                    runner.mismatches.append(f"{block.where} raised\n{traceback.format_exc()}")
        finally:
            runner.close()
        mismatches += runner.mismatches
    for mismatch in mismatches:
        print(mismatch)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
