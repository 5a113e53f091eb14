"""The import rules of the layout (issue 9), checked statically on every module.

Every ``import``/``from ... import`` in the three packages is read with :mod:`ast` -- module
level, function level and ``if TYPE_CHECKING:`` alike; relative imports resolved -- together
with dynamic imports and dotted string constants naming one of our modules (a lazy-import
table such as ``_LAZY``). ``from rerankkit import Name`` is resolved through
``rerankkit._LAZY`` and the names ``rerankkit/__init__.py`` imports to the module that defines
``Name``, so the facade is no loophole. Runtime import cost (``import rerankkit`` loads no
torch/frameworks) is checked in a subprocess by ``tests/test_packaging.py``.

Dynamic imports: a call of an *importer* -- ``import_module``, ``__import__``, ``require``,
``require_extra`` (the package's optional-import helpers), called by name or as an attribute
(``importlib.import_module``, ``il.import_module`` after ``import importlib as il``,
``builtins.__import__``) or through an alias (``from importlib import import_module as im``;
``imp = __import__``; ``self.load = importlib.import_module``; ``getattr(importlib,
"import_module")``; ``vars(builtins)["__import__"]``) -- is checked like an ``import`` of its
literal module argument (relative names resolved from a literal ``package=``/``level=``; a
literal ``fromlist`` read like ``from ... import``). A module argument that is not a plain
string literal (an f-string, a concatenation, a variable) is itself a violation: "computed
module name". The few call sites that resolve a table on purpose are listed, with the reason,
in ``COMPUTED_IMPORT_ALLOWED``; the strings of those tables are dotted constants naming our
modules, so each entry is checked (a bad entry in the real tables is reported: tested below).
Aliases are resolved per file, flow-insensitively (an importer name bound anywhere
in the file counts everywhere in it).

What this static check still cannot see: ``sys.modules[...]`` lookups (``getattr(sys.modules[
name], ...)``) of modules someone else imported; ``exec``/``eval``/``compile`` of source text;
``importlib.util`` machinery (``find_spec``/``spec_from_file_location`` + ``exec_module``),
``runpy``, ``pkgutil``; an importer passed as an argument, stored in a container, wrapped
(``functools.partial``) or returned from a function, or imported from another module under a
new name; a lazy table naming a third-party framework, or a bare top-level name without a dot
(only dotted constants naming our modules are read as table entries); and anything decided
from data at run time (files, environment). ``tests/test_packaging.py`` covers the import cost
at run time.
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
        "rerankkit._pickling",
        "rerankkit._renamed",
        "rerankkit._retry",
        "rerankkit._abandon",
        "rerankkit._blank",
        "rerankkit._secrets",
    ),
    "llm": ("rerankkit.llm.*",),
    "testing": ("rerankkit.testing",),  # fakes for users' tests: rerankers and LLMs
    "compose": ("rerankkit.compose.*",),
    "context": ("rerankkit.context.*",),  # sentence pruning and token packing (issue 22)
    "backends": ("rerankkit.backends.*",),
    "specs": ("rerankkit._specs", "rerankkit._calibrated"),
    "eval": ("rerankkit.eval.*",),
    "adapting": ("rerankkit.adapting.*",),
    "remote": ("rerankkit.remote.*",),  # HTTP clients of rerank services (issue 12)
    "serve": ("rerankkit.serve.*",),  # the ASGI server of `rerankkit serve` (issue 12)
    "distributed": ("rerankkit.distributed.*",),  # Ray Data / Ray Serve (issue 13)
    "train": ("rerankkit.train.*",),  # fine-tuning on sentence-transformers (issue 15)
    "cli": ("rerankkit.cli.*",),
    "facade": ("rerankkit", "rerankkit.__main__"),
}
_BELOW_CLI = (
    "core",
    "llm",
    "testing",
    "compose",
    "backends",
    "remote",
    "specs",
    "context",
    "serve",
    "distributed",
    "eval",
    "train",
    "adapting",
)
_MODELS = ("core", "llm", "testing", "compose", "backends", "remote")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "llm": frozenset({"core"}),
    "testing": frozenset({"core", "llm"}),
    "compose": frozenset({"core"}),
    "backends": frozenset({"core", "llm"}),
    "remote": frozenset({"core"}),
    "specs": frozenset(_MODELS),
    "serve": frozenset({*_MODELS, "specs"}),
    "distributed": frozenset({*_MODELS, "specs", "serve"}),
    "context": frozenset({*_MODELS, "specs"}),
    "eval": frozenset({*_MODELS, "specs", "distributed", "context"}),
    "train": frozenset({*_MODELS, "specs", "eval"}),
    "adapting": frozenset({*_MODELS, "specs", "context"}),
    "cli": frozenset({*_BELOW_CLI, "facade"}),
    "facade": frozenset({*_BELOW_CLI, "cli"}),  # __init__ maps names lazily; __main__ -> cli
}
CLI = "rerankkit.cli"  # the only part of rerankkit that may import an adapter or a framework
ADAPTERS: dict[str, str] = {  # adapter package -> the framework it adapts (import prefix)
    "langchain_rerankkit": "langchain",
    "llamaindex_rerankkit": "llama_index",
}
FRAMEWORKS: tuple[str, ...] = tuple(ADAPTERS.values())  # top-level name starts with one of these
# f("module", ...) imports "module": importlib's, the builtin, rerankkit._optional.require and
# rerankkit.adapting.require_extra (by name, as an attribute or through an alias)
DYNAMIC_IMPORTERS = ("import_module", "__import__", "require", "require_extra")
COMPUTED = "computed module name: use a literal so the layering can be checked"
# Call sites that import a computed name on purpose: (module, enclosing function, argument as
# written) -> why. Each resolves a table whose strings are dotted constants naming our modules,
# checked as table entries, or is the optional-import helper itself, whose callers are checked.
COMPUTED_IMPORT_ALLOWED: dict[tuple[str, str, str], str] = {
    ("rerankkit._specs", "_kind_class", "kind.module"): "resolves _KINDS (entries checked)",
    ("rerankkit._optional", "lazy_exports.__getattr__", "module"): (
        "PEP 562 for the facade's _LAZY and the adapters' lazy tables (entries checked in the "
        "modules that hold them)"
    ),
    ("rerankkit.cli._judge", "load_llm", "module"): (
        "the user's own LLM, named by rerankkit judge --llm MODULE:NAME (not one of our modules)"
    ),
    ("rerankkit._optional", "require", "module"): (
        "the helper itself (adapting's require_extra): each call is checked"
    ),
}

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


@dataclass(frozen=True)
class ComputedImport:
    """An importer called with a module name that is not a plain string literal."""

    line: int
    scope: str  # the enclosing function's qualified name ("" at module level)
    argument: str  # the module argument as written ("" when there is none to read)


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


def _importer_of(expr: ast.expr, names: Mapping[str, str], attrs: Mapping[str, str]) -> str | None:
    """The importer ``expr`` evaluates to (its canonical name), or None."""
    if isinstance(expr, ast.Name):
        return names.get(expr.id)
    if isinstance(expr, ast.Attribute):
        return attrs.get(expr.attr)
    key: ast.expr | None = None
    if isinstance(expr, ast.Call) and getattr(expr.func, "id", None) == "getattr":
        key = expr.args[1] if len(expr.args) >= 2 else None  # getattr(importlib, "import_module")
    elif isinstance(expr, ast.Subscript):
        key = expr.slice  # vars(builtins)["__import__"], builtins.__dict__["__import__"]
    if isinstance(key, ast.Constant) and key.value in DYNAMIC_IMPORTERS:
        return str(key.value)
    return None


def _importer_aliases(tree: ast.AST) -> tuple[dict[str, str], dict[str, str]]:
    """Names and attribute names bound to an importer anywhere in the file -> which importer."""
    names = {n: n for n in DYNAMIC_IMPORTERS}
    attrs = dict(names)
    for node in ast.walk(tree):  # from importlib import import_module as im
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in DYNAMIC_IMPORTERS and alias.asname:
                    names[alias.asname] = alias.name
    bindings: list[tuple[ast.expr, ast.expr]] = []  # (target, value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            bindings += [(t, node.value) for t in node.targets]
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            bindings.append((node.target, node.value))
    changed = True
    while changed:  # imp = __import__; load = imp; ... until nothing new is bound
        changed = False
        for target, value in bindings:
            importer = _importer_of(value, names, attrs)
            if importer is None:
                continue
            if isinstance(target, ast.Name) and target.id not in names:
                names[target.id] = importer
                changed = True
            elif isinstance(target, ast.Attribute) and target.attr not in attrs:
                attrs[target.attr] = importer
                changed = True
    return names, attrs


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position and not any(
        isinstance(a, ast.Starred) for a in call.args[: position + 1]
    ):
        return call.args[position]
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return None


def _literal(expr: ast.expr | None) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def imports_of(
    source: str,
    module: str,
    *,
    is_package: bool,
    known_modules: frozenset[str],
    facade: Mapping[str, str],
) -> Iterator[Import | ComputedImport]:
    tree = ast.parse(source)
    names, attrs = _importer_aliases(tree)

    def from_names(base: str, imported: list[str], line: int) -> Iterator[Import]:
        for name in imported:
            written = f"{base}.{name}"
            if name == "*":
                yield Import(line, base, base)
            elif written in known_modules:
                yield Import(line, written, written)
            elif base == "rerankkit":
                yield Import(line, written, facade.get(name, "rerankkit"))
            else:
                yield Import(line, written, base)

    def dynamic(call: ast.Call, importer: str, scope: str) -> Iterator[Import | ComputedImport]:
        keyword = "module" if importer in ("require", "require_extra") else "name"
        arg = _argument(call, 0, keyword)
        if arg is None and (call.keywords or any(isinstance(a, ast.Starred) for a in call.args)):
            arg = (call.args or [kw.value for kw in call.keywords])[0]  # f(*args), f(**kw)
        name = _literal(arg)
        computed = ComputedImport(call.lineno, scope, "" if arg is None else ast.unparse(arg))
        if name is None:
            yield computed
            return
        fromlist: list[str] = []
        if importer == "import_module" and name.startswith("."):  # relative to package=
            package_arg = _argument(call, 1, "package")
            package = _literal(package_arg)
            if isinstance(package_arg, ast.Name) and package_arg.id == "__name__":
                package = module
            elif isinstance(package_arg, ast.Name) and package_arg.id == "__package__":
                package = module if is_package else module.rpartition(".")[0]
            if package is None:
                yield computed
                return
            level = len(name) - len(name.lstrip("."))
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            name = ".".join(filter(None, [base, name.lstrip(".")]))
        elif importer == "__import__":  # __import__(name, globals, locals, fromlist, level)
            level_arg = _argument(call, 4, "level")
            level = 0 if level_arg is None else getattr(level_arg, "value", None)
            listed = _argument(call, 3, "fromlist")
            if isinstance(listed, (ast.List, ast.Tuple)):
                fromlist = [_literal(e) or "" for e in listed.elts]
            literal_fromlist = all(fromlist) and (
                isinstance(listed, (ast.List, ast.Tuple))
                or listed is None
                or (isinstance(listed, ast.Constant) and listed.value is None)
            )
            if not isinstance(level, int) or not literal_fromlist:
                yield computed  # a computed level or fromlist hides what is imported
                return
            if level:
                name = _resolve_relative(module, is_package, level, name or None)
        elif name.startswith("."):
            yield computed  # require(".x") has no package to resolve against
            return
        yield Import(call.lineno, name, name)
        yield from from_names(name, fromlist, call.lineno)

    def visit(node: ast.AST, scope: str) -> Iterator[Import | ComputedImport]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            yield from from_names(base, [a.name for a in node.names], node.lineno)
        elif isinstance(node, ast.Call):
            importer = _importer_of(node.func, names, attrs)
            if importer is not None:
                yield from dynamic(node, importer, scope)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "." in node.value  # not a bare "rerankkit" (a logger name, a folder)
            and node.value in known_modules
        ):
            yield Import(node.lineno, node.value, node.value)  # a lazy-import table entry
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = f"{scope}.{node.name}" if scope else node.name
        for child in ast.iter_child_nodes(node):
            yield from visit(child, scope)

    yield from visit(tree, "")


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
        if isinstance(imp, ComputedImport):
            if (module, imp.scope, imp.argument) not in COMPUTED_IMPORT_ALLOWED:
                where = f"{imp.scope}: " if imp.scope else ""
                report(imp.line, f"{COMPUTED} ({where}{imp.argument or 'no module argument'})")
            continue
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
    assert "rerankkit.llm._listwise" in modules  # the walk found the subpackages
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
    assert facade["CrossEncoderReranker"] == "rerankkit.backends._cross_encoder"
    assert facade["Reranker"] == "rerankkit._base"  # an eager import
    for name in rerankkit.__all__:
        assert name in facade, f"rerankkit.{name} does not resolve to a defining module"
        assert layer_of(facade[name]) is not None, f"rerankkit.{name} -> {facade[name]}"


# --------------------------------------------------------------------------------------
# The checker can fail: synthetic modules that break each rule
# --------------------------------------------------------------------------------------
KNOWN = frozenset(package_modules()) | {"rerankkit.cli", "rerankkit.backends._cross_encoder"}


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
            "rerankkit.backends._cross_encoder (via rerankkit.CrossEncoderReranker)",
        ),
        (  # function-level
            "rerankkit.compose.evil",
            "def f():\n    from rerankkit.eval._datasets import load\n    return load\n",
            "2: layer compose (rerankkit.compose.evil) may not import layer eval",
        ),
        (  # TYPE_CHECKING and relative
            "rerankkit.compose.evil",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .._specs import x\n",
            "3: layer compose (rerankkit.compose.evil) may not import layer specs: "
            "rerankkit._specs",
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
            "rerankkit._specs",
            "from llamaindex_rerankkit import RerankKitPostprocessor\n",
            "1: core module rerankkit._specs imports the adapter llamaindex_rerankkit",
        ),
        (  # string-literal dynamic import
            "rerankkit.eval.evil",
            "from rerankkit._optional import require\nm = require('llama_index.core', 'x')\n",
            "2: core module rerankkit.eval.evil imports the framework llama_index.core",
        ),
        (  # a lazy-import table naming a higher layer
            "rerankkit.testing",
            "_LAZY = {'X': 'rerankkit.backends._cross_encoder'}\n",
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
            "from rerankkit.cli._commands import main\n",
            "1: adapter llamaindex_rerankkit imports the CLI: rerankkit.cli",
        ),
        (
            "rerankkit.llm.evil",
            "def broken(:\n",
            "1: cannot be parsed",
        ),
        # --- dynamic imports: computed names and aliased importers (review findings) ---
        (  # an f-string made of literals is still computed
            "rerankkit.compose.evil",
            "import importlib\nm = importlib.import_module(f'rerankkit.{\"eval\"}.datasets')\n",
            f"2: {COMPUTED} (f",
        ),
        (  # a concatenation of literals
            "rerankkit.compose.evil",
            "from importlib import import_module\nimport_module('rerankkit.' + 'eval.datasets')\n",
            f"2: {COMPUTED} ('rerankkit.' + 'eval.datasets')",
        ),
        (  # an aliased importer: its literal argument is an import
            "rerankkit.llm.evil",
            "from importlib import import_module as im\nim('langchain_core')\n",
            "2: core module rerankkit.llm.evil imports the framework langchain_core",
        ),
        (  # the builtin bound to another name
            "rerankkit.backends.evil",
            "imp = __import__\nimp('llama_index.core')\n",
            "2: core module rerankkit.backends.evil imports the framework llama_index.core",
        ),
        (  # an aliased module: il.import_module
            "rerankkit.llm.evil",
            "import importlib as il\nil.import_module('rerankkit.backends._cross_encoder')\n",
            "2: layer llm (rerankkit.llm.evil) may not import layer backends",
        ),
        (  # X = importlib.import_module, then a chain of aliases
            "rerankkit.compose.evil",
            "import importlib\nX = importlib.import_module\nY = X\nY('rerankkit._specs')\n",
            "4: layer compose (rerankkit.compose.evil) may not import layer specs",
        ),
        (  # an attribute bound to an importer
            "rerankkit.llm.evil",
            "import importlib\nclass C:\n    def __init__(self):\n"
            "        self.load = importlib.import_module\n"
            "    def f(self):\n        return self.load('rerankkit.eval._datasets')\n",
            "6: layer llm (rerankkit.llm.evil) may not import layer eval",
        ),
        (  # fetched by name
            "rerankkit.llm.evil",
            "import importlib\ngetattr(importlib, 'import_module')('langchain_core')\n",
            "2: core module rerankkit.llm.evil imports the framework langchain_core",
        ),
        (
            "rerankkit.llm.evil",
            "import builtins\nvars(builtins)['__import__']('llama_index.core')\n",
            "2: core module rerankkit.llm.evil imports the framework llama_index.core",
        ),
        (  # a relative name, resolved from the literal package
            "rerankkit.compose.evil",
            "import importlib\nimportlib.import_module('..eval', 'rerankkit.compose')\n",
            "2: layer compose (rerankkit.compose.evil) may not import layer eval: rerankkit.eval",
        ),
        (
            "rerankkit.compose.evil",
            "import importlib\nimportlib.import_module('.datasets', package=PKG)\n",
            f"2: {COMPUTED} ('.datasets')",
        ),
        (
            "rerankkit.compose.evil",
            "import importlib\nimportlib.import_module('..eval.datasets', __package__)\n",
            "2: layer compose (rerankkit.compose.evil) may not import layer eval",
        ),
        (  # __import__ with a level and a fromlist
            "rerankkit.compose.evil",
            "__import__('', globals(), None, ['_specs'], 2)\n",
            "1: layer compose (rerankkit.compose.evil) may not import layer specs: "
            "rerankkit._specs",
        ),
        (
            "rerankkit.compose.evil",
            "__import__('rerankkit', fromlist=NAMES)\n",
            f"1: {COMPUTED} ('rerankkit')",
        ),
        (  # the optional-import helpers, aliased or not, with a computed name
            "rerankkit.eval.evil",
            "from rerankkit._optional import require as need\nneed('llama_' + 'index', 'x')\n",
            f"2: {COMPUTED} ('llama_' + 'index')",
        ),
        (
            "llamaindex_rerankkit.evil",
            "from rerankkit.adapting import require_extra\nrequire_extra('langchain_core', 'x')\n",
            "2: adapter llamaindex_rerankkit imports the other framework langchain_core",
        ),
        (
            "langchain_rerankkit.evil",
            "from rerankkit.adapting import require_extra\nrequire_extra(module=name, extra='x')\n",
            f"2: {COMPUTED} (name)",
        ),
        (  # the allow-list names exact call sites: the same code elsewhere is reported
            "rerankkit.llm.evil",
            "import importlib\ndef __getattr__(name):\n    module = _LAZY[name]\n"
            "    return importlib.import_module(module)\n",
            f"4: {COMPUTED} (__getattr__: module)",
        ),
        (
            "rerankkit._specs",
            "import importlib\ndef other(kind):\n    return importlib.import_module(kind.module)\n",
            f"3: {COMPUTED} (other: kind.module)",
        ),
    ],
)
def test_a_violating_module_is_reported(module: str, source: str, expected: str) -> None:
    reported = _check(source, module)
    assert any(r.startswith(expected) for r in reported), reported


def test_the_computed_import_allow_list_is_exact() -> None:
    """Every computed import in the tree is allowed, and every allowed call site exists."""
    modules = package_modules()
    known, facade = frozenset(modules), facade_map()
    sites = {
        (module, imp.scope, imp.argument)
        for module, path in modules.items()
        for imp in imports_of(
            path.read_text(encoding="utf-8"),
            module,
            is_package=path.name == "__init__.py",
            known_modules=known,
            facade=facade,
        )
        if isinstance(imp, ComputedImport)
    }
    assert sites == set(COMPUTED_IMPORT_ALLOWED)


@pytest.mark.parametrize(
    ("path", "entry", "replacement", "expected"),
    [
        (
            "rerankkit/__init__.py",
            '"rerankkit.llm._factory"',
            '"langchain_rerankkit._compressor"',
            "core module rerankkit imports the adapter langchain_rerankkit._compressor",
        ),
        (
            "rerankkit/_specs.py",
            '"rerankkit.testing"',
            '"rerankkit.eval._datasets"',
            "layer specs (rerankkit._specs) may not import layer eval: rerankkit.eval._datasets",
        ),
        (
            "langchain_rerankkit/__init__.py",
            '"langchain_rerankkit._hybrid"',
            '"llamaindex_rerankkit._hybrid"',
            "adapter langchain_rerankkit imports the other adapter llamaindex_rerankkit._hybrid",
        ),
        (
            "llamaindex_rerankkit/__init__.py",
            '"llamaindex_rerankkit._hybrid"',
            '"rerankkit.cli._demo"',
            "adapter llamaindex_rerankkit imports the CLI: rerankkit.cli._demo",
        ),
    ],
)
def test_the_tables_behind_allowed_computed_imports_are_checked(
    path: str, entry: str, replacement: str, expected: str
) -> None:
    """The allowed computed imports read tables; a bad entry in the real table is reported."""
    source = (ROOT / path).read_text(encoding="utf-8")
    assert entry in source, f"{path} no longer has {entry}: update this test"
    module = ".".join(Path(path).with_suffix("").parts).removesuffix(".__init__")
    is_package = path.endswith("__init__.py")
    assert _check(source, module, is_package=is_package) == []
    reported = _check(source.replace(entry, replacement), module, is_package=is_package)
    assert any(expected in r for r in reported), reported


def test_relative_import_in_a_package_init_is_resolved_from_the_package() -> None:
    source = "from .listwise import x\nfrom ..eval import y\n"
    assert _check(source, "rerankkit.llm", is_package=True) == [
        "2: layer llm (rerankkit.llm) may not import layer eval: rerankkit.eval"
    ]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("rerankkit.backends.ok", "from rerankkit import Reranker, llm_reranker\nimport torch\n"),
        ("rerankkit._specs", "from rerankkit.compose import _fusion\nfrom .backends import _hf\n"),
        ("rerankkit.cli.ok", "import langchain_core\nfrom langchain_rerankkit import X\n"),
        ("rerankkit.__main__", "from rerankkit.cli import main\n"),
        ("langchain_rerankkit.ok", "from rerankkit import Reranker\nfrom ._llm import x\n"),
        ("llamaindex_rerankkit.ok", "from llama_index.core import schema\nimport rerankkit\n"),
        ("rerankkit.eval.ok", "from rerankkit._optional import require\nrequire('torch', 'x')\n"),
        ("rerankkit.llm.ok", "from importlib import import_module as im\nim('json')\n"),
        ("rerankkit.cli.ok", "import importlib\nimportlib.import_module('langchain_core')\n"),
        (
            "rerankkit.compose.ok",
            "import importlib\nimportlib.import_module('.cache', __package__)\n",
        ),
    ],
)
def test_an_allowed_module_is_not_reported(module: str, source: str) -> None:
    assert _check(source, module) == []
