"""Notebooks run as tests (nbmake); those that read ../shared skip with a reason without it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
NEEDS_SHARED = ("04_evaluation_trec_dl.ipynb", "05_korean_retrieval.ipynb")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if (SHARED / "data").is_dir():
        return
    skip = pytest.mark.skip(reason=f"{SHARED} (test data beside the checkout) is absent")
    for item in items:
        if item.path.name in NEEDS_SHARED:
            item.add_marker(skip)
