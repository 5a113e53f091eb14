"""The ``rerankkit`` command line and the demo.

The only part of the distribution allowed to import the framework adapters
(``langchain_rerankkit``, ``llamaindex_rerankkit``): the demo shows both.
"""

from rerankkit.cli._commands import main

__all__ = ["main"]
