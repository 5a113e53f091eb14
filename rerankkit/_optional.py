"""Optional dependencies: import on first use, with an install hint when missing.

The adapters reach these through :mod:`rerankkit.adapting` (``require_extra`` is
:func:`require`), and ``rerankkit/__init__.py`` loads its backends with :func:`lazy_exports`.

Example:
    >>> require("json", "langchain").__name__
    'json'
    >>> require("langchain_not_installed_here", "langchain")
    Traceback (most recent call last):
    rerankkit.errors.MissingExtraError: langchain_not_installed_here is required for this feature: pip install "rerankkit[langchain]"
"""  # noqa: E501

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from rerankkit.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise :class:`rerankkit.errors.MissingExtraError` naming ``extra``.

    Put it before an adapter module's imports of an optional framework package, so a user
    without it reads ``pip install "rerankkit[<extra>]"`` instead of a bare ImportError.

    Raises:
        rerankkit.errors.MissingExtraError: ``module`` is not installed (an ImportError).
        ModuleNotFoundError: ``module`` is installed but one of its own imports is missing.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        # Missing means `module` itself or a package above it is absent. Anything else (a
        # submodule it imports, a third-party dependency) is a broken install: show that.
        if error.name is None or not (module == error.name or module.startswith(error.name + ".")):
            raise
        raise MissingExtraError(module, extra) from error


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
        needs a missing extra, using the name (``package.name``, ``from package import
        name``) raises :class:`rerankkit.errors.MissingExtraError`, which says what to install;
        other import errors propagate. List a name that needs an extra in ``public`` only
        when :func:`is_installed` finds the extra: ``dir()`` and ``import *`` then never touch
        it, so ``help()``, ``pydoc`` and ``inspect.getmembers`` work without the extra.

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
        value = getattr(importlib.import_module(module), name)  # MissingExtraError: the hint
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
