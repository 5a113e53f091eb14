"""Optional dependencies: import on first use, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the extra to install.

    Example:
        >>> str(MissingExtraError("torch", "transformers"))
        'torch is required for this feature: pip install "rerankkit[transformers]"'
    """

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f'{module} is required for this feature: pip install "rerankkit[{extra}]"')
        self.name = module
        self.extra = extra


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # the module exists but one of its own imports is broken: show that
        raise MissingExtraError(module, extra) from error
