"""Import cost, install hints, and the README/CI promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rerankkit import MissingExtraError
from rerankkit._optional import require

ROOT = Path(__file__).resolve().parent.parent
HEAVY = (
    "torch",
    "transformers",
    "langchain_core",
    "langchain",
    "llama_index",
    "onnxruntime",
    "ray",
)


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_import_rerankkit_is_light() -> None:
    loaded = _modules_after("import rerankkit; rerankkit.RerankResult; rerankkit.Reranker")
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY)


def test_public_names_resolve_without_heavy_imports() -> None:
    # Touching a backend class must not load its dependencies until it is constructed.
    loaded = _modules_after("import rerankkit; [getattr(rerankkit, n) for n in rerankkit.__all__]")
    heavy = {"torch", "transformers", "langchain_core", "llama_index"}
    assert not {m.split(".")[0] for m in loaded} & heavy


def test_the_distributed_package_loads_ray_only_when_used() -> None:
    loaded = _modules_after(
        "import rerankkit.distributed; from rerankkit.distributed import rerank_dataset"
    )
    assert not {m.split(".")[0] for m in loaded} & {"ray", "pyarrow", "torch", "fastapi"}


def test_unknown_attribute_is_attribute_error() -> None:
    import rerankkit

    with pytest.raises(AttributeError, match="no_such_name"):
        rerankkit.no_such_name  # noqa: B018


def test_missing_extra_names_the_pip_command() -> None:
    with pytest.raises(MissingExtraError, match=r'pip install "rerankkit\[onnx\]"') as info:
        require("rerankkit_surely_missing_module", "onnx")
    assert isinstance(info.value, ImportError)
    assert info.value.extra == "onnx"


def test_broken_dependency_is_not_mistaken_for_a_missing_extra(tmp_path: Path) -> None:
    (tmp_path / "brokenpkg.py").write_text("import a_module_that_does_not_exist\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ModuleNotFoundError) as info:
            require("brokenpkg", "all")
        assert not isinstance(info.value, MissingExtraError)
    finally:
        sys.path.remove(str(tmp_path))


def test_a_broken_submodule_of_an_installed_package_is_not_a_missing_extra(
    tmp_path: Path,
) -> None:
    package = tmp_path / "halfpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "front.py").write_text("import halfpkg.gone  # a broken install\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ModuleNotFoundError) as info:
            require("halfpkg.front", "all")  # exists, but what it imports does not
        assert not isinstance(info.value, MissingExtraError)
        with pytest.raises(MissingExtraError):
            require("halfpkg.absent", "all")  # the module asked for is itself missing
        with pytest.raises(MissingExtraError):
            require("nopkg_at_all.front", "all")  # ... or a package above it
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("halfpkg")]:
            del sys.modules[name]


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci_lines if "pytest" in line)
    assert command in (ROOT / "README.md").read_text()
