"""Count product code lines: the three packages, docstrings, comments and blank lines excluded.

A line counts when it holds at least one token that is code: not a comment, not a newline or
indentation token, and not inside a docstring. Docstrings are string literals standing alone as a
statement (module, class and function docstrings, and attribute docstrings after a field), found
with ``ast``; everything else, multi-line calls included, counts line by line.

Usage::

    python benchmarks/code_size.py            # this checkout
    python benchmarks/code_size.py --per-file # also each file, largest first
    git stash -u; python benchmarks/code_size.py; git stash pop   # or compare two checkouts
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

PACKAGES = ("rerankkit", "langchain_rerankkit", "llamaindex_rerankkit")
_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
    tokenize.ENCODING,
}


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers covered by string literals that stand alone as a statement."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def code_lines(source: str) -> int:
    """How many lines of ``source`` hold code (see the module docstring)."""
    skip = docstring_lines(ast.parse(source))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _NOT_CODE:
            continue
        for line in range(token.start[0], token.end[0] + 1):
            if line not in skip:
                lines.add(line)
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=".", type=Path, help="the checkout")
    parser.add_argument("--per-file", action="store_true", help="also list each file")
    args = parser.parse_args()
    total = 0
    per_file: list[tuple[int, str]] = []
    for package in PACKAGES:
        subtotal = 0
        for path in sorted((args.root / package).rglob("*.py")):
            count = code_lines(path.read_text(encoding="utf-8"))
            per_file.append((count, str(path.relative_to(args.root))))
            subtotal += count
        print(f"{package:<22} {subtotal:6d}")
        total += subtotal
    print(f"{'total':<22} {total:6d}")
    if args.per_file:
        for count, name in sorted(per_file, reverse=True):
            print(f"{count:6d}  {name}")


if __name__ == "__main__":
    main()
