"""Griffe extension: read a Google-style ``Example:`` section as ``Examples:``.

Google style (and Sphinx's napoleon) accept both spellings; griffe only knows the plural and
renders the singular as an admonition of plain Markdown, where doctest lines such as
``>>> [r.index for r in results]`` followed by ``[1, 0]`` read as reference links.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class SingularExamples(griffe.Extension):
    """Rename ``Example:`` section headers to ``Examples:`` before the docstring is parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SINGULAR.sub(r"\1Examples:", obj.docstring.value)
