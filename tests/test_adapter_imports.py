"""Adapter imports with optional framework parts missing: for real, in a subprocess.

A ``sys.meta_path`` finder makes the blocked top-level module unimportable (as if it were
not installed); the adapter must still import, its core class must still work, and using a
part that needs the missing module must raise ``MissingExtraError`` with the pip hint.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

BLOCK = """
import sys

class Block:
    def __init__(self, *names):
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

sys.meta_path.insert(0, Block(*BLOCKED))
"""


def run_blocked(blocked: tuple[str, ...], body: str) -> str:
    """Run ``body`` with ``blocked`` unimportable; return stdout (fail on a non-zero exit)."""
    code = f"BLOCKED = {blocked!r}\n{BLOCK}\n{textwrap.dedent(body)}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_langchain_adapter_works_without_langchain_classic() -> None:
    out = run_blocked(
        ("langchain_classic",),
        """
        import sys
        import langchain_rerankkit
        from langchain_rerankkit import RerankKitCompressor
        from langchain_core.documents import Document
        from rerankkit.errors import MissingExtraError
        from rerankkit.testing import KeywordReranker

        compressor = RerankKitCompressor(reranker=KeywordReranker(), top_n=1)
        docs = [Document("a dog", id="d"), Document("a cat", id="c")]
        print([d.id for d in compressor.compress_documents(docs, "cat")])
        print(sorted(langchain_rerankkit.__all__) == sorted(
            n for n in dir(langchain_rerankkit) if n in langchain_rerankkit.__all__))
        for use in (
            lambda: langchain_rerankkit.hybrid_retriever,
            lambda: __import__("langchain_rerankkit._hybrid"),
        ):
            try:
                use()
            except (MissingExtraError, AttributeError) as error:  # access / import
                print(error.extra, "|", error)
        print("langchain_classic" in sys.modules)
        """,
    )
    lines = out.splitlines()
    assert lines[0] == "['c']"
    assert lines[1] == "True"  # dir() lists every public name, loaded or not
    hint = 'pip install "rerankkit[langchain]"'
    for line in lines[2:4]:
        assert line.startswith("langchain | langchain_classic")
        assert hint in line
    assert lines[4] == "False"


def test_langchain_adapter_without_langchain_core_says_what_to_install() -> None:
    out = run_blocked(
        ("langchain_core",),
        """
        from rerankkit.errors import MissingExtraError
        try:
            import langchain_rerankkit
        except MissingExtraError as error:
            print(error)
        """,
    )
    assert out.strip() == (
        'langchain_core is required for this feature: pip install "rerankkit[langchain]"'
    )


def test_llamaindex_adapter_without_llama_index_says_what_to_install() -> None:
    out = run_blocked(
        ("llama_index",),
        """
        from rerankkit.errors import MissingExtraError
        try:
            import llamaindex_rerankkit
        except MissingExtraError as error:
            print(isinstance(error, ImportError), error)
        """,
    )
    assert out.strip() == (
        'True llama_index.core is required for this feature: pip install "rerankkit[llamaindex]"'
    )


@pytest.mark.parametrize(
    ("package", "hybrid", "heavy"),
    [
        ("langchain_rerankkit", "hybrid_retriever", "langchain_classic"),
        ("llamaindex_rerankkit", "hybrid_query_engine", None),
    ],
)
def test_hybrid_helpers_load_on_first_use(package: str, hybrid: str, heavy: str | None) -> None:
    code = f"""
import sys, {package} as adapter
print(f"{package}._hybrid" in sys.modules, {heavy!r} in sys.modules)
print(callable(adapter.{hybrid}), f"{package}._hybrid" in sys.modules)
print({hybrid!r} in vars(adapter), {hybrid!r} in dir(adapter))
"""
    out = run_blocked((), code)
    assert out.splitlines() == ["False False", "True True", "True True"]


def test_unknown_attribute_is_an_attribute_error() -> None:
    import langchain_rerankkit
    import llamaindex_rerankkit

    for module in (langchain_rerankkit, llamaindex_rerankkit):
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            module.nope  # noqa: B018
        assert not hasattr(module, "nope")


INTROSPECT = """
import contextlib, inspect, io, pydoc, sys
import {package} as adapter
from rerankkit.errors import MissingExtraError

namespace = {{}}
exec("from {package} import *", namespace)  # star-import: only what can be imported
print(sorted(adapter.__all__) == sorted(n for n in namespace if not n.startswith("__")))
print({name!r} in adapter.__all__, {name!r} in dir(adapter))
members = dict(inspect.getmembers(adapter))
print({name!r} in members, all(n in members for n in adapter.__all__))
with contextlib.redirect_stdout(io.StringIO()) as text:
    help(adapter)
print("{eager}" in text.getvalue(), "{eager}" in pydoc.render_doc(adapter))
try:
    getattr(adapter, {name!r})
except MissingExtraError as error:  # attribute access: the ImportError with the hint
    print(type(error).__name__, error.extra, "|", error)
try:
    from {package} import {name}
except MissingExtraError as error:  # a from-import: the same
    print(type(error).__name__, error.extra, "|", error)
print({heavy!r} in sys.modules)
"""


LANGCHAIN_CLASSIC_HINT = (
    'langchain_classic is required for this feature: pip install "rerankkit[langchain]"'
)


@pytest.mark.parametrize(
    ("blocked", "expected"),
    [
        (
            ("langchain_classic",),
            [
                "True",  # `from langchain_rerankkit import *` works and imports exactly __all__
                "False False",  # neither in __all__ nor in dir()
                "False True",  # inspect.getmembers works
                "True True",  # help() and pydoc work
                f"MissingExtraError langchain | {LANGCHAIN_CLASSIC_HINT}",  # says what to install
                f"MissingExtraError langchain | {LANGCHAIN_CLASSIC_HINT}",  # from-import: same
                "False",
            ],
        ),
        ((), ["True", "True True", "True True", "True True", "True"]),  # imported for real
    ],
    ids=["without-langchain-classic", "everything-installed"],
)
def test_langchain_star_import_and_introspection(
    blocked: tuple[str, ...], expected: list[str]
) -> None:
    code = INTROSPECT.format(
        package="langchain_rerankkit",
        name="hybrid_retriever",
        eager="RerankKitCompressor",
        heavy="langchain_classic",
    )
    assert run_blocked(blocked, code).splitlines() == expected


def test_lazy_exports_says_what_to_install_for_a_name_whose_extra_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mechanism both adapters use, on a module of our own that needs a missing extra."""
    from rerankkit.adapting import lazy_exports
    from rerankkit.errors import MissingExtraError

    (tmp_path / "needs_demo_extra.py").write_text(
        "from rerankkit.adapting import require_extra\n"
        "require_extra('rerankkit_no_such_module', 'demo')\n"
        "thing = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = types.ModuleType("pkg")
    module.__getattr__, module.__dir__ = lazy_exports(  # type: ignore[attr-defined]
        "pkg", {"thing": "needs_demo_extra"}, vars(module), []
    )
    assert "thing" not in dir(module)  # `public` does not list it: introspection skips it
    with pytest.raises(MissingExtraError) as caught:
        module.thing  # noqa: B018
    error = caught.value
    assert (error.name, error.extra) == ("rerankkit_no_such_module", "demo")
    assert 'pip install "rerankkit[demo]"' in str(error)
    assert pickle.loads(pickle.dumps(error)).extra == "demo"
