"""The import rules of the layout (issue 9), checked statically on every module.

Every ``import``/``from ... import`` in the three packages is read with :mod:`ast` -- module
level, function level and ``if TYPE_CHECKING:`` alike; relative imports resolved -- together
with string-literal dynamic imports (``importlib.import_module("x")``, ``require("x", ...)``)
and dotted string constants naming one of our modules (a lazy-import table such as ``_LAZY``).
``from rerankkit import Name`` is resolved through ``rerankkit._LAZY`` and the names
``rerankkit/__init__.py`` imports to the module that defines ``Name``, so the facade is no
loophole. Runtime import cost (``import rerankkit`` loads no torch/frameworks) is checked
in a subprocess by ``tests/test_packaging.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import rerankkit

# --------------------------------------------------------------------------------------
# The rules, as data. A pattern "a.b" matches that module only; "a.b.*" matches a.b and
# everything under it. A layer may import its own layer and those listed in MAY_IMPORT.
# --------------------------------------------------------------------------------------
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "rerankkit.errors",
        "rerankkit._result",
        "rerankkit._base",
        "rerankkit._ordering",
        "rerankkit._validation",
        "rerankkit._optional",
    ),
    "llm": ("rerankkit.llm.*",),
    "testing": ("rerankkit.testing",),  # fakes for users' tests: rerankers and LLMs
    "compose": ("rerankkit.compose.*",),
    "backends": ("rerankkit.backends.*",),
    "specs": ("rerankkit.specs",),
    "eval": ("rerankkit.eval.*",),
    "adapting": ("rerankkit.adapting.*",),
    "cli": ("rerankkit.cli.*",),
    "facade": ("rerankkit", "rerankkit.__main__"),
}
_BELOW_CLI = ("core", "llm", "testing", "compose", "backends", "specs", "eval", "adapting")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "llm": frozenset({"core"}),
    "testing": frozenset({"core", "llm"}),
    "compose": frozenset({"core"}),
    "backends": frozenset({"core", "llm"}),
    "specs": frozenset({"core", "llm", "testing", "compose", "backends"}),
    "eval": frozenset({"core", "llm", "testing", "compose", "backends", "specs"}),
    "adapting": frozenset({"core", "llm", "testing", "compose", "backends", "specs"}),
    "cli": frozenset({*_BELOW_CLI, "facade"}),
    "facade": frozenset({*_BELOW_CLI, "cli"}),  # __init__ maps names lazily; __main__ -> cli
}
CLI = "rerankkit.cli"  # the only part of rerankkit that may import an adapter or a framework
ADAPTERS: dict[str, str] = {  # adapter package -> the framework it adapts (import prefix)
    "langchain_rerankkit": "langchain",
    "llamaindex_rerankkit": "llama_index",
}
FRAMEWORKS: tuple[str, ...] = tuple(ADAPTERS.values())  # top-level name starts with one of these
DYNAMIC_IMPORTERS = ("import_module", "__import__", "require")  # f("module", ...) imports it

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rerankkit", *ADAPTERS)


# --------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


@dataclass(frozen=True)
class Import:
    line: int
    written: str  # the dotted path as written (module[.name]), relative imports resolved
    target: str  # the module that defines what is imported (the facade resolved)


def layer_of(module: str) -> str | None:
    for layer, patterns in LAYERS.items():
        for pattern in patterns:
            if pattern.endswith(".*"):
                base = pattern[:-2]
                if module == base or module.startswith(base + "."):
                    return layer
            elif module == pattern:
                return layer
    return None


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def _is_private(dotted: str) -> bool:
    return any(
        p.startswith("_") and not (p.startswith("__") and p.endswith("__"))
        for p in dotted.split(".")
    )


def facade_map() -> dict[str, str]:
    """Name importable from ``rerankkit`` -> the module that defines it."""
    names: dict[str, str] = {}
    tree = ast.parse((ROOT / "rerankkit" / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # eager imports and the TYPE_CHECKING mirror of _LAZY
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "rerankkit"
        ):
            for alias in node.names:
                names[alias.asname or alias.name] = str(node.module)
    names.update(rerankkit._LAZY)  # the runtime table is the authority
    return names


def imports_of(
    source: str,
    module: str,
    *,
    is_package: bool,
    known_modules: frozenset[str],
    facade: Mapping[str, str],
) -> Iterator[Import]:
    tree = ast.parse(source)

    def from_names(base: str, names: list[ast.alias], line: int) -> Iterator[Import]:
        for alias in names:
            written = f"{base}.{alias.name}"
            if alias.name == "*":
                yield Import(line, base, base)
            elif written in known_modules:
                yield Import(line, written, written)
            elif base == "rerankkit":
                yield Import(line, written, facade.get(alias.name, "rerankkit"))
            else:
                yield Import(line, written, base)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            yield from from_names(base, node.names, node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                fname in DYNAMIC_IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield Import(node.lineno, first.value, first.value)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "." in node.value  # not a bare "rerankkit" (a logger name, a folder)
            and node.value in known_modules
        ):
            yield Import(node.lineno, node.value, node.value)  # a lazy-import table entry


def check_source(
    source: str,
    module: str,
    path: str,
    *,
    is_package: bool = False,
    known_modules: frozenset[str] = frozenset(),
    facade: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Every rule ``module`` (whose text is ``source``) breaks, with file:line."""
    facade = facade_map() if facade is None else facade
    top = module.split(".")[0]
    out: list[Violation] = []
    seen: set[tuple[int, str]] = set()

    def report(line: int, rule: str) -> None:
        if (line, rule) not in seen:
            seen.add((line, rule))
            out.append(Violation(path, line, rule))

    try:
        found = list(
            imports_of(
                source, module, is_package=is_package, known_modules=known_modules, facade=facade
            )
        )
    except SyntaxError as exc:
        return [Violation(path, exc.lineno or 0, f"cannot be parsed: {exc.msg}")]

    own_layer = layer_of(module) if top == "rerankkit" else None
    if top == "rerankkit" and own_layer is None:
        report(1, f"{module} is in no layer of LAYERS (tests/test_layering.py): add it")

    for imp in found:
        t_top = imp.target.split(".")[0]
        w_top = imp.written.split(".")[0]
        tops = {t_top, w_top}
        if top == "rerankkit":
            in_cli = module == CLI or module.startswith(CLI + ".")
            if not in_cli:
                for name in tops:
                    if name.startswith(FRAMEWORKS):
                        report(
                            imp.line, f"core module {module} imports the framework {imp.written}"
                        )
                    if name in ADAPTERS:
                        report(imp.line, f"core module {module} imports the adapter {imp.written}")
            if t_top == "rerankkit" and own_layer is not None:
                target_layer = layer_of(imp.target)
                if target_layer is None:
                    report(imp.line, f"{module} imports {imp.target}, which is in no layer")
                elif target_layer != own_layer and target_layer not in MAY_IMPORT[own_layer]:
                    direct = imp.written == imp.target or imp.written.startswith(imp.target + ".")
                    via = "" if direct else f" (via {imp.written})"
                    report(
                        imp.line,
                        f"layer {own_layer} ({module}) may not import layer {target_layer}: "
                        f"{imp.target}{via}",
                    )
        elif top in ADAPTERS:
            other_frameworks = tuple(f for a, f in ADAPTERS.items() if a != top)
            for name in tops:
                if name in ADAPTERS and name != top:
                    report(imp.line, f"adapter {top} imports the other adapter {imp.written}")
                if name.startswith(other_frameworks):
                    report(imp.line, f"adapter {top} imports the other framework {imp.written}")
            if w_top == "rerankkit" and _is_private(imp.written):
                report(imp.line, f"adapter {top} imports the private rerankkit path {imp.written}")
            for dotted in (imp.written, imp.target):
                if dotted == CLI or dotted.startswith(CLI + "."):
                    report(imp.line, f"adapter {top} imports the CLI: {imp.written}")
    return out


def package_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the three packages."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def check_tree() -> list[Violation]:
    modules = package_modules()
    known = frozenset(modules)
    facade = facade_map()
    out: list[Violation] = []
    for module, path in modules.items():
        out += check_source(
            path.read_text(encoding="utf-8"),
            module,
            str(path.relative_to(ROOT)),
            is_package=path.name == "__init__.py",
            known_modules=known,
            facade=facade,
        )
    return out


# --------------------------------------------------------------------------------------
# The tree obeys the rules
# --------------------------------------------------------------------------------------
def test_the_three_packages_obey_the_import_rules() -> None:
    violations = check_tree()
    assert not violations, "import rules broken:\n" + "\n".join(map(str, violations))


def test_every_rerankkit_module_is_in_exactly_one_layer() -> None:
    modules = [m for m in package_modules() if m.split(".")[0] == "rerankkit"]
    assert "rerankkit.llm.listwise" in modules  # the walk found the subpackages
    for module in modules:
        matches = [
            layer
            for layer, patterns in LAYERS.items()
            for p in patterns
            if module == p.removesuffix(".*") or (p.endswith(".*") and module.startswith(p[:-1]))
        ]
        assert len(matches) == 1, f"{module}: layers {matches}"
    assert set(MAY_IMPORT) == set(LAYERS)


def test_facade_names_resolve_to_their_defining_modules() -> None:
    facade = facade_map()
    assert facade["CrossEncoderReranker"] == "rerankkit.backends.cross_encoder"
    assert facade["Reranker"] == "rerankkit._base"  # an eager import
    for name in rerankkit.__all__:
        assert name in facade, f"rerankkit.{name} does not resolve to a defining module"
        assert layer_of(facade[name]) is not None, f"rerankkit.{name} -> {facade[name]}"


# --------------------------------------------------------------------------------------
# The checker can fail: synthetic modules that break each rule
# --------------------------------------------------------------------------------------
KNOWN = frozenset(package_modules()) | {"rerankkit.cli", "rerankkit.backends.cross_encoder"}


def _check(source: str, module: str, *, is_package: bool = False) -> list[str]:
    path = module.replace(".", "/") + ("/__init__.py" if is_package else ".py")
    violations = check_source(source, module, path, is_package=is_package, known_modules=KNOWN)
    for v in violations:
        assert v.path == path and v.line >= 1
    return [f"{v.line}: {v.rule}" for v in violations]


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "rerankkit.llm.evil",
            "import os\nfrom rerankkit.backends import cross_encoder\n",
            "2: layer llm (rerankkit.llm.evil) may not import layer backends",
        ),
        (  # the facade is not a loophole
            "rerankkit.llm.evil",
            "from rerankkit import RerankResult, CrossEncoderReranker\n",
            "1: layer llm (rerankkit.llm.evil) may not import layer backends: "
            "rerankkit.backends.cross_encoder (via rerankkit.CrossEncoderReranker)",
        ),
        (  # function-level
            "rerankkit.compose.evil",
            "def f():\n    from rerankkit.eval.datasets import load\n    return load\n",
            "2: layer compose (rerankkit.compose.evil) may not import layer eval",
        ),
        (  # TYPE_CHECKING and relative
            "rerankkit.compose.evil",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..specs import x\n",
            "3: layer compose (rerankkit.compose.evil) may not import layer specs: rerankkit.specs",
        ),
        (  # relative, two levels up
            "rerankkit.backends.evil",
            "from .. import cli\n",
            "1: layer backends (rerankkit.backends.evil) may not import layer cli: rerankkit.cli",
        ),
        (
            "rerankkit._base",
            "def f():\n    import langchain_core.documents\n",
            "2: core module rerankkit._base imports the framework langchain_core.documents",
        ),
        (
            "rerankkit.specs",
            "from llamaindex_rerankkit import RerankKitPostprocessor\n",
            "1: core module rerankkit.specs imports the adapter llamaindex_rerankkit",
        ),
        (  # string-literal dynamic import
            "rerankkit.eval.evil",
            "from rerankkit._optional import require\nm = require('llama_index.core', 'x')\n",
            "2: core module rerankkit.eval.evil imports the framework llama_index.core",
        ),
        (  # a lazy-import table naming a higher layer
            "rerankkit.testing",
            "_LAZY = {'X': 'rerankkit.backends.cross_encoder'}\n",
            "1: layer testing (rerankkit.testing) may not import layer backends",
        ),
        (
            "rerankkit.newthing",
            "import os\n",
            "1: rerankkit.newthing is in no layer of LAYERS",
        ),
        (
            "langchain_rerankkit.evil",
            "from llamaindex_rerankkit import RerankKitPostprocessor\n",
            "1: adapter langchain_rerankkit imports the other adapter llamaindex_rerankkit",
        ),
        (
            "llamaindex_rerankkit.evil",
            "import langchain_core\n",
            "1: adapter llamaindex_rerankkit imports the other framework langchain_core",
        ),
        (
            "langchain_rerankkit.evil",
            "def f():\n    from rerankkit._base import Reranker\n",
            "2: adapter langchain_rerankkit imports the private rerankkit path rerankkit._base",
        ),
        (
            "langchain_rerankkit.evil",
            "from rerankkit.adapting import _helper\n",
            "1: adapter langchain_rerankkit imports the private rerankkit path",
        ),
        (
            "llamaindex_rerankkit.evil",
            "from rerankkit.cli.commands import main\n",
            "1: adapter llamaindex_rerankkit imports the CLI: rerankkit.cli",
        ),
        (
            "rerankkit.llm.evil",
            "def broken(:\n",
            "1: cannot be parsed",
        ),
    ],
)
def test_a_violating_module_is_reported(module: str, source: str, expected: str) -> None:
    reported = _check(source, module)
    assert any(r.startswith(expected) for r in reported), reported


def test_relative_import_in_a_package_init_is_resolved_from_the_package() -> None:
    source = "from .listwise import x\nfrom ..eval import y\n"
    assert _check(source, "rerankkit.llm", is_package=True) == [
        "2: layer llm (rerankkit.llm) may not import layer eval: rerankkit.eval"
    ]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("rerankkit.backends.ok", "from rerankkit import Reranker, llm_reranker\nimport torch\n"),
        ("rerankkit.specs", "from rerankkit.compose import fusion\nfrom .backends import _hf\n"),
        ("rerankkit.cli.ok", "import langchain_core\nfrom langchain_rerankkit import X\n"),
        ("rerankkit.__main__", "from rerankkit.cli import main\n"),
        ("langchain_rerankkit.ok", "from rerankkit import Reranker\nfrom ._llm import x\n"),
        ("llamaindex_rerankkit.ok", "from llama_index.core import schema\nimport rerankkit\n"),
    ],
)
def test_an_allowed_module_is_not_reported(module: str, source: str) -> None:
    assert _check(source, module) == []
