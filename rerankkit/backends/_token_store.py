"""``TokenEmbeddingStore``: document token embeddings computed once and reused across queries.

Late interaction keeps one vector per document token, so a document's embeddings do not depend
on the query: reranking the same candidates for many queries (follow-up questions, an
evaluation run, several users over one corpus) only needs the queries encoded. Entries are keyed
by ``(model key, SHA-256 of the text)``; the model key names everything that changes the vectors
(weights, revision, document length, prompt).

Memory per document is ``tokens x dim x bytes``: a 180-token passage with 128-dim vectors costs
180 x 128 x 4 = 92,160 bytes in float32 and half that in float16 (``dtype="float16"``), so
100,000 such passages need 9.2 GB (float32) or 4.6 GB (float16). The in-memory layer is bounded
by bytes (least recently used evicted first); an optional disk layer (``directory=``) survives
restarts and is shared by processes.

Libraries, not our own code: ``cachetools.LRUCache`` sized by ``ndarray.nbytes`` for memory and
``diskcache.Cache`` (SQLite index, size-bounded, process-safe) for disk.

Example:
    >>> import numpy as np
    >>> store = TokenEmbeddingStore(max_bytes=1_000_000, dtype="float16")
    >>> [e.dtype.name for e in store.put_many("m", ["a doc"], [np.ones((3, 4), dtype=np.float32)])]
    ['float16']
    >>> [None if e is None else e.shape for e in store.get_many("m", ["a doc", "other"])]
    [(3, 4), None]
    >>> store.info()
    StoreInfo(hits=1, misses=1, entries=1, bytes=24, disk_entries=0)
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from rerankkit._optional import require
from rerankkit._pickling import RebuiltOnUnpickle
from rerankkit._validation import check_choice, check_int

EXTRA = "colbert"
STORE_DTYPES = ("float32", "float16")


class StoreInfo(NamedTuple):
    """Counters of a ``TokenEmbeddingStore`` (lookups since creation; sizes now)."""

    hits: int
    misses: int
    entries: int
    bytes: int
    disk_entries: int


def text_key(model_key: str, text: str) -> str:
    """The store key of ``text`` under ``model_key``: ``model_key`` + SHA-256 of the UTF-8 text.

    Example:
        >>> text_key("m", "hello")[:12]
        'm\\x002cf24dba5f'
    """
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{model_key}\0{digest}"


class TokenEmbeddingStore(RebuiltOnUnpickle):
    """Least-recently-used map ``(model key, text hash) -> [tokens, dim]`` array, thread-safe.

    Pickled (for Ray/multiprocessing) as its constructor arguments: entries are a cache, not
    state, and the disk layer is reopened by path.

    Args:
        max_bytes: Most bytes of embeddings held in memory (default 1 GiB).
        dtype: ``"float32"`` (exact) or ``"float16"`` (half the memory; MaxSim scores move by
            about 1e-3 on a 128-dim model, which rarely changes a ranking).
        directory: A folder for a disk layer shared by processes and kept across restarts;
            ``None`` keeps everything in memory.
        disk_max_bytes: Size bound of the disk layer (default 8 GiB).

    Raises:
        ValueError: ``max_bytes``/``disk_max_bytes`` < 1 or an unknown ``dtype``.
        TypeError: ``directory`` is not a str or path.
        MissingExtraError: ``cachetools`` (or ``diskcache`` for ``directory``) is not installed:
            ``pip install "rerankkit[colbert]"``.
    """

    def __init__(
        self,
        max_bytes: int = 1 << 30,
        *,
        dtype: str = "float32",
        directory: str | os.PathLike[str] | None = None,
        disk_max_bytes: int = 8 << 30,
    ) -> None:
        self.max_bytes = check_int(max_bytes, "max_bytes", minimum=1)
        self.dtype = check_choice(dtype, "dtype", STORE_DTYPES)
        disk_max_bytes = check_int(disk_max_bytes, "disk_max_bytes", minimum=1)
        cachetools = require("cachetools", EXTRA)
        self._memory: Any = cachetools.LRUCache(maxsize=self.max_bytes, getsizeof=_nbytes)
        self._disk: Any = None
        if directory is not None and not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a str or path, got {type(directory).__name__}")
        self.directory = None if directory is None else os.fspath(directory)
        if self.directory is not None:
            diskcache = require("diskcache", EXTRA)
            self._disk = diskcache.Cache(
                self.directory,
                size_limit=disk_max_bytes,
                eviction_policy="least-recently-used",
            )
        self._lock = threading.Lock()
        self._hits = self._misses = 0

    def __repr__(self) -> str:
        where = f", directory={self.directory!r}" if self.directory else ""
        return f"TokenEmbeddingStore(max_bytes={self.max_bytes}, dtype={self.dtype!r}{where})"

    def get_many(self, model_key: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The stored ``[tokens, dim]`` array of each text (``None`` where absent), in order.

        Arrays come back in the store's dtype; callers must not modify them (they are shared).
        """
        found: list[np.ndarray | None] = []
        for text in texts:
            key = text_key(model_key, text)
            with self._lock:
                array = self._memory.get(key)
            if array is None and self._disk is not None:
                array = self._disk.get(key)
                if array is not None:  # another store (process, dtype) may have written it
                    array = self._keep(key, array, to_disk=False)
            found.append(array)
        with self._lock:
            hits = sum(array is not None for array in found)
            self._hits += hits
            self._misses += len(found) - hits
        return found

    def put_many(
        self, model_key: str, texts: Sequence[str], arrays: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Store one ``[tokens, dim]`` array per text; returns them as stored (in the store's
        dtype, read-only), which is what later ``get_many`` calls return.

        An array larger than ``max_bytes`` is not kept in memory (it would evict everything);
        it still goes to the disk layer.
        """
        if len(texts) != len(arrays):
            raise ValueError(f"got {len(texts)} texts but {len(arrays)} arrays")
        return [
            self._keep(text_key(model_key, text), array, to_disk=True)
            for text, array in zip(texts, arrays, strict=True)
        ]

    def _keep(self, key: str, array: np.ndarray, *, to_disk: bool) -> np.ndarray:
        """``array`` in the store's dtype and read-only, held in memory when it fits
        ``max_bytes``, and written to the disk layer when ``to_disk``."""
        stored = np.ascontiguousarray(array, dtype=self.dtype)
        stored.setflags(write=False)
        if stored.nbytes <= self.max_bytes:
            with self._lock:
                self._memory[key] = stored
        if to_disk and self._disk is not None:
            self._disk.set(key, stored)
        return stored

    def info(self) -> StoreInfo:
        """Hits and misses so far, and what is held now."""
        with self._lock:
            return StoreInfo(
                hits=self._hits,
                misses=self._misses,
                entries=len(self._memory),
                bytes=int(self._memory.currsize),
                disk_entries=0 if self._disk is None else len(self._disk),
            )

    def clear(self) -> None:
        """Drop every entry (both layers) and reset the counters."""
        with self._lock:
            self._memory.clear()
            self._hits = self._misses = 0
        if self._disk is not None:
            self._disk.clear()


def _nbytes(array: np.ndarray) -> int:
    return int(array.nbytes)
