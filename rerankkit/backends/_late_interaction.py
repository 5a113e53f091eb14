"""``LateInteractionReranker``: ColBERT-style MaxSim over per-token embeddings.

Late interaction sits between a bi-encoder and a cross-encoder: query and document are encoded
separately (like a bi-encoder, so document embeddings are computed once and reused from a
:class:`~rerankkit.backends._token_store.TokenEmbeddingStore`), but every token keeps its own vector
and the score compares them token by token (closer to a cross-encoder's reading). Khattab and
Zaharia, "ColBERT: Efficient and Effective Passage Search via Contextualized Late Interaction
over BERT", SIGIR 2020, eq. 3::

    score(q, d) = sum over query tokens i of  max over document tokens j of  cos(q_i, d_j)

Checkpoints load through sentence-transformers' ``MultiVectorEncoder`` (native saves, PyLate and
Stanford ColBERT checkpoints), which applies the model's own markers, query expansion, lengths
and skip-list; scoring is its MaxSim (padding-aware, batched). This module adds what a reranker
needs around it: the embedding store, sharing work across queries, and the ``Reranker`` contract.

Example:
    >>> reranker = LateInteractionReranker("../shared/models/minilm-l6-colbert")
    >>> docs = ["Berlin is in Germany.", "Paris is the capital of France."]
    >>> reranker.rerank("capital of France", docs)
    [RerankResult(index=1, score=4.74...), RerankResult(index=0, score=1.79...)]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rerankkit._base import Group
from rerankkit._optional import require
from rerankkit._validation import check_int, check_model_name
from rerankkit.backends._hf import (
    ModelReranker,
    Scored,
    Source,
    files_digest,
    load_pretrained,
    pick_device_and_dtype,
    unique_texts,
)
from rerankkit.backends._token_store import EXTRA, TokenEmbeddingStore

logger = logging.getLogger(__name__)

_SUFFIXES = (".safetensors", ".bin", ".json")  # weights and configs


def model_identity(source: Source) -> str:
    """What the document vectors depend on: a local folder's file contents, or hub id + revision.

    A folder is hashed (every weight and config file, recursively) so a retrained model never
    reads the vectors of the old one from a shared or on-disk store.

    Example:
        >>> model_identity(Source("org/colbert", revision="v1"))
        'org/colbert@v1'
    """
    if not source.is_local:
        return f"{source.name}@{source.revision or 'main'}"
    folder = Path(source.name).expanduser()
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name.endswith(_SUFFIXES)]
    return f"sha256:{files_digest(folder, files)[:32]}"


class LateInteractionReranker(ModelReranker):
    """Rerank by MaxSim of ColBERT/PyLate token embeddings, reusing document embeddings.

    Score scale: MaxSim, the sum over query tokens of the best cosine against the document's
    tokens, so in ``[-Lq, Lq]`` for ``Lq`` query tokens (query expansion included); only the
    order within one query is meaningful. ``length_normalize=True`` divides by ``Lq`` (mean
    MaxSim, in [-1, 1]) for thresholds that carry across queries.

    Pickling stores the constructor's arguments (a given ``store`` pickles as its own copy);
    unpickling loads the model again (issue 10: the weights never travel).

    Args:
        model_name_or_path: Hub id or local folder of a sentence-transformers
            ``MultiVectorEncoder``, PyLate or Stanford ColBERT checkpoint.
        device: ``None`` picks cuda > mps > cpu.
        batch_size: Texts per forward pass.
        store: Where document embeddings are kept: a :class:`TokenEmbeddingStore` (share one
            between rerankers or processes), ``None`` for a private in-memory store of
            ``TokenEmbeddingStore()`` defaults, or ``False`` to encode every time.
        length_normalize: Divide each score by the query's token count.
        revision, local_files_only, cache_dir, trust_remote_code: as for every backend.

    Raises:
        ModelLoadError: The checkpoint cannot be found or is not a multi-vector model.
        MissingExtraError: ``pip install "rerankkit[colbert]"``.

    Example:
        >>> reranker = LateInteractionReranker("../shared/models/minilm-l6-colbert")
        >>> reranker.dimension, reranker.store.dtype
        (128, 'float32')
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: Any = None,
        batch_size: int = 32,
        store: TokenEmbeddingStore | bool | None = None,
        length_normalize: bool = False,
        revision: str | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        if not (store is None or store is False or isinstance(store, TokenEmbeddingStore)):
            raise TypeError(
                f"store must be a TokenEmbeddingStore, None or False, got {type(store).__name__}"
            )
        st = require("sentence_transformers", EXTRA)
        self.device, _ = pick_device_and_dtype(device, None)
        source = Source(
            check_model_name(model_name_or_path),
            revision,
            local_files_only,
            cache_dir,
            trust_remote_code,
        )

        def load(name: str, *, cache_dir: Any, **kwargs: Any) -> Any:
            return st.MultiVectorEncoder(name, device=self.device, cache_folder=cache_dir, **kwargs)

        self.model = load_pretrained(source, load, "multi-vector model").eval()
        self.model_name_or_path = source.name
        self.length_normalize = bool(length_normalize)
        self.dimension = int(self.model.get_embedding_dimension())
        self.store = TokenEmbeddingStore() if store is None else store or None
        self._identity = model_identity(source)
        logger.debug("loaded %r (dim %d)", self, self.dimension)

    @property
    def cache_key(self) -> str:
        return f"colbert:{self._identity}:norm={self.length_normalize}"

    @property
    def _store_key(self) -> str:
        # The document side depends on the weights, the document prompt and its length limit.
        prompt = self.model.prompts.get("document", "")
        return f"{self._identity}|doc-prompt={prompt!r}|max={self.model.max_seq_length}"

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """Query token embeddings, one float32 ``[tokens, dim]`` array per query (L2-normalised
        when the model normalises), with the model's query marker and expansion."""
        return self._encode(self.model.encode_query, queries)

    def encode_documents(self, documents: Sequence[str]) -> list[np.ndarray]:
        """Document token embeddings, one ``[tokens, dim]`` array per document, from the store
        where present; the rest are encoded (length-sorted batches by sentence-transformers) and
        stored. Arrays have the store's dtype (float32 without a store)."""
        found: list[np.ndarray | None] = (
            self.store.get_many(self._store_key, documents)
            if self.store is not None
            else [None] * len(documents)
        )
        missing = list(dict.fromkeys(d for d, e in zip(documents, found, strict=True) if e is None))
        fresh = self._encode(self.model.encode_document, missing)
        if self.store is not None and missing:
            # score with what the store keeps, so a document scores the same on its first
            # call as on later ones (a float16 store rounds)
            fresh = self.store.put_many(self._store_key, missing, fresh)
        by_text = dict(zip(missing, fresh, strict=True))
        return [by_text[d] if e is None else e for d, e in zip(documents, found, strict=True)]

    def _encode(self, encode: Any, texts: Sequence[str]) -> list[np.ndarray]:
        """Float32 token embeddings of ``texts`` by a sentence-transformers ``encode_*``."""
        if not texts:
            return []
        encoded = encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True)
        return [np.asarray(e, dtype=np.float32) for e in encoded]

    def _score_many_with_details(self, groups: list[Group]) -> Scored:
        # Queries are encoded once each and every unique document once (or read from the store)
        # for all groups; MaxSim then runs per group as one padded batch.
        torch = require("torch", EXTRA)
        queries, documents = unique_texts(groups)
        query_vectors = dict(zip(queries, self.encode_queries(list(queries)), strict=True))
        document_vectors = dict(zip(documents, self.encode_documents(list(documents)), strict=True))
        normalize = {"length_normalize": True} if self.length_normalize else {}
        out: Scored = []
        with torch.inference_mode():
            for query, docs in groups:
                scores = self.model.similarity(
                    [torch.from_numpy(query_vectors[query])],
                    [torch.from_numpy(document_vectors[d].astype(np.float32)) for d in docs],
                    **normalize,
                )
                out.append((scores[0].float().tolist(), None))
        return out
