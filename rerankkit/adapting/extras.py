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
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from rerankkit._optional import require

__all__ = ["lazy_exports", "require_extra"]


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
        ``(__getattr__, __dir__)``, to assign at the package's top level. An import error of
        the module (a :class:`rerankkit.errors.MissingExtraError` with its install hint)
        propagates from the attribute access.

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
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
