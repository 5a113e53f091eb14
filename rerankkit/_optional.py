"""Optional dependencies: import on first use, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from rerankkit.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        # Missing means `module` itself or a package above it is absent. Anything else (a
        # submodule it imports, a third-party dependency) is a broken install: show that.
        if error.name is None or not (module == error.name or module.startswith(error.name + ".")):
            raise
        raise MissingExtraError(module, extra) from error
