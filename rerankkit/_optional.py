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
        top = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # the module exists but one of its own imports is broken: show that
        raise MissingExtraError(module, extra) from error
