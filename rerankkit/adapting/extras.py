"""Optional framework parts for adapters: import on first use, with an install hint.

Example:
    >>> require_extra("json", "langchain").__name__
    'json'
    >>> require_extra("langchain_not_installed_here", "langchain")
    Traceback (most recent call last):
    rerankkit.errors.MissingExtraError: langchain_not_installed_here is required for this feature: pip install "rerankkit[langchain]"
"""  # noqa: E501

from __future__ import annotations

import importlib
import importlib.util
import opcode
import sys
from collections.abc import Callable, Mapping
from types import FrameType, ModuleType
from typing import Any

from rerankkit._optional import require
from rerankkit.errors import MissingExtraError, RerankkitError

__all__ = ["MissingExtraAttributeError", "is_installed", "lazy_exports", "require_extra"]

_IMPORT_FROM = opcode.opmap.get("IMPORT_FROM")


class MissingExtraAttributeError(RerankkitError, AttributeError):
    """A package's lazy public name needs an optional extra that is not installed.

    Raised by the ``__getattr__`` of :func:`lazy_exports` on attribute access
    (``adapter.name``, ``getattr``), with the :class:`rerankkit.errors.MissingExtraError`
    as its ``__cause__`` and the same message, so ``hasattr``, ``inspect.getmembers``,
    ``help()`` and ``pydoc`` treat the name as absent while a user still reads
    ``pip install "rerankkit[<extra>]"``. (CPython cannot make one class both an
    ``ImportError`` and an ``AttributeError``; a ``from package import name`` statement
    gets the ``MissingExtraError`` itself, as Python would otherwise replace an
    ``AttributeError`` there by a bare "cannot import name".)

    Attributes:
        name: The attribute asked for.
        module: The module that could not be imported.
        extra: The ``rerankkit[...]`` extra that provides it.

    Example:
        >>> from rerankkit.errors import MissingExtraError
        >>> error = MissingExtraAttributeError("hybrid", MissingExtraError("faiss", "demo"))
        >>> isinstance(error, AttributeError), error.name, error.extra
        (True, 'hybrid', 'demo')
        >>> print(error)
        faiss is required for this feature: pip install "rerankkit[demo]"
    """

    def __init__(self, attribute: str, missing: MissingExtraError) -> None:
        super().__init__(str(missing))
        self.name = attribute
        self.module = missing.name or ""
        self.extra = missing.extra
        self.missing = missing

    def __reduce__(
        self,
    ) -> tuple[type[MissingExtraAttributeError], tuple[str, MissingExtraError]]:
        return type(self), (self.name or "", self.missing)  # picklable across processes


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it.

    For an adapter's ``__all__``: list a name that needs an optional extra only when the
    extra is there, so ``from adapter import *`` never fails.

    Example:
        >>> is_installed("json"), is_installed("rerankkit_no_such_module")
        (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken finder; a module without a spec
        return False


def _importing_from(frame: FrameType | None) -> bool:
    """Whether ``frame`` is running ``from package import name`` (the IMPORT_FROM opcode)."""
    try:
        return frame is not None and frame.f_code.co_code[frame.f_lasti] == _IMPORT_FROM
    except (AttributeError, IndexError, TypeError):  # an interpreter without these details
        return False


def require_extra(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise :class:`rerankkit.errors.MissingExtraError` naming ``extra``.

    Put it before an adapter module's imports of an optional framework package, so a user
    without it reads ``pip install "rerankkit[<extra>]"`` instead of a bare ImportError.

    Raises:
        rerankkit.errors.MissingExtraError: ``module`` is not installed (an ImportError).
        ModuleNotFoundError: ``module`` is installed but one of its own imports is missing.
    """
    return require(module, extra)


def lazy_exports(
    package: str, lazy: Mapping[str, str], namespace: dict[str, Any], public: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for a package whose names load on first use.

    Args:
        package: The package's ``__name__`` (for the AttributeError message).
        lazy: Public name -> module defining it, imported on first access.
        namespace: The package's ``globals()``; a loaded name is cached there.
        public: The package's ``__all__``; ``dir()`` lists all of it, loaded or not.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the package's top level. When the module
        needs a missing extra, attribute access raises :class:`MissingExtraAttributeError`
        (an ``AttributeError``: ``hasattr`` is False, introspection skips the name) and a
        ``from package import name`` statement the
        :class:`rerankkit.errors.MissingExtraError`; both say what to install. Other import
        errors propagate. List a name that needs an extra in ``public`` only when
        :func:`is_installed` finds the extra.

    Example:
        >>> namespace = {}
        >>> getattr_, dir_ = lazy_exports("pkg", {"dumps": "json"}, namespace, ["dumps"])
        >>> getattr_("dumps").__name__, "dumps" in namespace, dir_()
        ('dumps', True, ['dumps'])
        >>> getattr_("loads")
        Traceback (most recent call last):
        AttributeError: module 'pkg' has no attribute 'loads'
    """

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            loaded = importlib.import_module(module)
        except MissingExtraError as missing:
            if _importing_from(sys._getframe(1)):
                raise
            raise MissingExtraAttributeError(name, missing) from missing
        value = getattr(loaded, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
