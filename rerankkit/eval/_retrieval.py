"""First-stage retrieval: BM25 (bm25s) and dense (bi-encoder) search over a small corpus.

The candidates a reranker reorders come from here in the benchmarks, the eval CLI and the
hybrid examples. Both searches return a *run*: ``{query_id: {doc_id: score}}`` with each
inner dict ordered best first, the format ranx, ir-measures and
:func:`rerankkit.compose._fusion.fuse_runs` read directly. ``top_n`` is how many hits each query
keeps.

Ids: pass ``corpus``/``queries`` as a mapping ``{id: text}`` (BEIR style) to get those ids
back, or as a sequence of texts to get their integer positions.

Example:
    >>> from rerankkit.eval import bm25_search
    >>> docs = {"d1": "Cats purr when content.", "d2": "Dogs bark at strangers."}
    >>> bm25_search(docs, {"q1": "why do cats purr"}, top_n=5)["q1"].keys()
    dict_keys(['d1'])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

import numpy as np

from rerankkit._optional import require
from rerankkit._renamed import renamed_arguments
from rerankkit._validation import check_int

logger = logging.getLogger(__name__)

Run: TypeAlias = dict[Hashable, dict[Hashable, float]]
"""``{query_id: {doc_id: score}}``, each inner dict ordered by descending score."""

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class Embedder(Protocol):
    """Has ``embed(texts) -> (n, dim)`` L2-normalised vectors, e.g. ``EmbeddingReranker``."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _split(
    items: Mapping[Any, str] | Sequence[str], name: str, *, at_least_one: bool = False
) -> tuple[list[Hashable], list[str]]:
    """Ids and texts of a ``{id: text}`` mapping or a sequence of texts (ids = positions).
    Errors name ``name`` and the bad id."""
    if isinstance(items, Mapping):
        ids, texts = list(items.keys()), list(items.values())
    elif isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(
            f"{name} must be a mapping {{id: text}} or a sequence of str, "
            f"got {type(items).__name__}"
        )
    else:
        ids, texts = list(range(len(items))), list(items)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{ids[position]!r}] must be a str, got {type(text).__name__}")
    if at_least_one and not texts:
        raise ValueError(f"{name} must contain at least one document")
    return ids, texts


def _stopword_list(language: str) -> list[str] | None:
    """bm25s's stopword list for ``language`` (what bm25s itself would use), else None."""
    from bm25s.tokenization import _infer_stopwords

    try:
        return list(_infer_stopwords(language))
    except ValueError:  # no list for that language
        return None


def _stemmer(language: str, has_stopwords: bool) -> Callable[[list[str]], list[str]] | None:
    """PyStemmer's ``stemWords`` for ``language``; ``None`` for a language bm25s only has a
    stopword list for (korean, chinese); else a ValueError naming the way out."""
    stemmer_module = require("Stemmer", "eval")  # PyStemmer
    if language in stemmer_module.algorithms():
        return stemmer_module.Stemmer(language).stemWords  # type: ignore[no-any-return]
    if has_stopwords:
        return None
    raise ValueError(
        f"language {language!r} has neither a PyStemmer stemmer nor a bm25s stopword list; "
        "use language=None for a plain regex tokenizer"
    )


class BM25Index:
    """A BM25 index (bm25s) built once over ``corpus``, searched many times.

    Args:
        corpus: Document texts, ``{doc_id: text}`` or a sequence (ids are positions).
        language: Analyser language. A Snowball language known to PyStemmer (``"english"``,
            ``"german"``, ...) turns on stemming; a language bm25s has a stopword list for
            (including ``"korean"`` and ``"chinese"``) turns on stopword removal. ``None``
            is a plain regex tokenizer: lowercase, ``token_pattern``, nothing else (works
            for any script, e.g. Korean).
        stem: Set ``False`` to turn stemming off even when the language has a stemmer.
        stopwords: ``True`` for the language's list, ``False`` for none, or your own list.
        token_pattern: Regex whose matches are the tokens (scikit-learn's default: words of
            two or more characters; use ``r"(?u)\\b\\w+\\b"`` to keep one-character words).
        k1, b, method: BM25 parameters and variant (``"lucene"``, ``"robertson"``, ``"atire"``,
            ``"bm25l"``, ``"bm25+"``), passed to ``bm25s.BM25``.

    Example:
        >>> index = BM25Index(["the cat sat", "a dog ran", "cats and dogs"])
        >>> [doc for doc, _ in index.search(["cat"], top_n=3)[0]]
        [0, 2]
    """

    def __init__(
        self,
        corpus: Mapping[Any, str] | Sequence[str],
        *,
        language: str | None = "english",
        stem: bool = True,
        stopwords: bool | Sequence[str] = True,
        token_pattern: str = DEFAULT_TOKEN_PATTERN,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
    ) -> None:
        if isinstance(stopwords, str):
            raise TypeError("stopwords must be a bool or a sequence of words, not a str")
        bm25s = require("bm25s", "eval")
        self.doc_ids, texts = _split(corpus, "corpus", at_least_one=True)
        self.language = language
        self.token_pattern = token_pattern
        if language is None:  # a plain regex tokenizer
            known, self._stemmer = None, None
        else:
            known = _stopword_list(language)
            self._stemmer = _stemmer(language, known is not None) if stem else None
        if isinstance(stopwords, bool):
            self._stopwords = (known or []) if stopwords else []
        else:
            self._stopwords = list(stopwords)
        logger.debug(
            "BM25 analyser: language=%s stemmer=%s stopwords=%d",
            language,
            self._stemmer is not None,
            len(self._stopwords),
        )
        self._bm25 = bm25s.BM25(k1=k1, b=b, method=method)
        self._bm25.index(self._tokenize(texts), show_progress=False)

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        tokens: list[list[str]] = bm25s.tokenize(
            texts,
            token_pattern=self.token_pattern,
            stopwords=self._stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        return tokens

    def __len__(self) -> int:
        return len(self.doc_ids)

    @renamed_arguments(k="top_n")
    def search(
        self, queries: Sequence[str], top_n: int = 100
    ) -> list[list[tuple[Hashable, float]]]:
        """Top ``top_n`` ``(doc_id, score)`` per query, best first.

        Documents that share no term with a query (BM25 score 0) are not returned, so a
        query may get fewer than ``top_n`` hits.

        Raises:
            TypeError: ``queries`` is not a sequence of str, or ``k=`` (renamed ``top_n``).
            ValueError: ``top_n`` is below 1.
        """
        top_n = check_int(top_n, "top_n", minimum=1)
        _, texts = _split(queries, "queries")
        results: list[list[tuple[Hashable, float]]] = []
        for tokens in self._tokenize(texts):
            # bm25s.retrieve breaks ties at the top_n-th place arbitrarily; top_n_columns keeps
            # corpus order, so runs are reproducible across platforms and bm25s versions.
            scores = self._bm25.get_scores_from_ids(self._bm25.get_tokens_ids(tokens))
            positions, values = top_n_columns(scores[np.newaxis, :], top_n)
            hits = zip(positions[0].tolist(), values[0].tolist(), strict=True)
            results.append([(self.doc_ids[p], s) for p, s in hits if s > 0.0])
        return results


@renamed_arguments(k="top_n")
def bm25_search(
    corpus: Mapping[Any, str] | Sequence[str],
    queries: Mapping[Any, str] | Sequence[str],
    top_n: int = 100,
    **options: Any,
) -> Run:
    """BM25 run over ``corpus`` for ``queries`` (bm25s, Lucene BM25, English stemming + stopwords).

    Args:
        corpus: ``{doc_id: text}`` or a sequence of texts (ids are positions).
        queries: ``{query_id: text}`` or a sequence of texts (ids are positions).
        top_n: Hits per query.
        **options: ``BM25Index`` options (``language=None`` for a plain regex tokenizer,
            ``language="korean"``, ``k1``, ``b``, ...).

    Returns:
        ``{query_id: {doc_id: score}}``, each inner dict best first.

    Raises:
        TypeError: ``corpus``/``queries`` of the wrong type, or ``k=`` (renamed ``top_n``).
        ValueError: An empty corpus, ``top_n`` below 1, or a bad analyser option.

    Example:
        >>> run = bm25_search(["red apples", "green pears"], ["apple"], top_n=2)
        >>> {doc: round(score, 3) for doc, score in run[0].items()}
        {0: 0.277}
    """
    query_ids, query_texts = _split(queries, "queries")
    index = BM25Index(corpus, **options)
    hits = index.search(query_texts, top_n)
    return {qid: dict(row) for qid, row in zip(query_ids, hits, strict=True)}


def top_n_columns(scores: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``top_n`` largest entries of each row of a 2-D
    array, best first; ``top_n`` is at least 1 (the callers check it).

    Ties keep the lower column first (stable), so results do not depend on the platform.

    Example:
        >>> positions, values = top_n_columns(np.array([[0.1, 0.9, 0.5]]), 2)
        >>> positions.tolist(), values.tolist()
        ([[1, 2]], [[0.9, 0.5]])
    """
    top_n = min(top_n, scores.shape[1])
    if top_n < scores.shape[1]:
        # argpartition is O(n) per row; only the top_n survivors get sorted.
        survivors = np.argpartition(-scores, top_n - 1, axis=1)[:, :top_n]
        # A tie at the cut could leave out a lower column: widen to everything >= the last value.
        last = np.take_along_axis(scores, survivors, axis=1).min(axis=1, keepdims=True)
        rows = []
        for row, threshold in zip(scores, last[:, 0], strict=True):
            keep = np.flatnonzero(row >= threshold)
            rows.append(keep[np.argsort(-row[keep], kind="stable")][:top_n])
        positions = np.stack(rows)
    else:
        positions = np.argsort(-scores, axis=1, kind="stable")
    return positions, np.take_along_axis(scores, positions, axis=1)


def _embed(embed: Callable[[list[str]], Any], texts: list[str], name: str) -> np.ndarray:
    vectors = np.asarray(embed(texts), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(
            f"encoder returned shape {vectors.shape} for {len(texts)} {name}; expected (n, dim)"
        )
    return vectors


def _embed_with_progress(
    embed: Callable[[list[str]], Any], texts: list[str], step: int
) -> np.ndarray:
    tqdm = require("tqdm", "eval").tqdm
    parts = []
    with tqdm(total=len(texts), desc="embedding corpus", unit="doc", leave=False) as bar:
        for start in range(0, len(texts), step):
            parts.append(_embed(embed, texts[start : start + step], "documents"))
            bar.update(len(parts[-1]))
    return np.concatenate(parts, axis=0)


@renamed_arguments(k="top_n")
def dense_search(
    corpus: Mapping[Any, str] | Sequence[str],
    queries: Mapping[Any, str] | Sequence[str],
    top_n: int = 100,
    *,
    encoder: Embedder | Callable[[list[str]], Any],
    corpus_embeddings: np.ndarray | None = None,
    batch_size: int = 1024,
    progress: bool = False,
) -> Run:
    """Dense (bi-encoder) run: cosine similarity of L2-normalised embeddings, exact search.

    Args:
        corpus: ``{doc_id: text}`` or a sequence of texts (ids are positions).
        queries: ``{query_id: text}`` or a sequence of texts.
        top_n: Hits per query.
        encoder: An ``EmbeddingReranker`` (anything with ``embed(texts)``) or a callable
            ``texts -> (n, dim)`` array; vectors must be L2-normalised.
        corpus_embeddings: Precomputed corpus vectors in corpus order (skip re-encoding a
            corpus you searched before; see ``benchmarks/scifact_hybrid.py``).
        batch_size: Queries scored per matrix product (bounds memory on large query sets).
        progress: Show a progress bar (tqdm, on stderr) while the corpus is embedded; the
            corpus is then embedded ``batch_size`` texts per call.

    Returns:
        ``{query_id: {doc_id: cosine}}``, each inner dict best first.

    Raises:
        TypeError: ``corpus``/``queries``/``encoder`` of the wrong type, or ``k=`` (renamed
            ``top_n``).
        ValueError: An empty corpus, ``top_n`` below 1, or vectors of the wrong shape.

    Example (``docs``, ``queries``: ``{id: text}``; ``path``: a bi-encoder folder)::

        from rerankkit import EmbeddingReranker

        dense_search(docs, queries, top_n=10, encoder=EmbeddingReranker(path))
    """
    top_n = check_int(top_n, "top_n", minimum=1)
    doc_ids, doc_texts = _split(corpus, "corpus", at_least_one=True)
    query_ids, query_texts = _split(queries, "queries")
    embed = getattr(encoder, "embed", encoder)
    if not callable(embed):
        raise TypeError("encoder must have an embed(texts) method or be a callable")
    if corpus_embeddings is None and progress:
        doc_vectors = _embed_with_progress(embed, doc_texts, batch_size)
    elif corpus_embeddings is None:
        doc_vectors = _embed(embed, doc_texts, "documents")
    else:
        doc_vectors = np.asarray(corpus_embeddings, dtype=np.float32)
        if doc_vectors.ndim != 2 or doc_vectors.shape[0] != len(doc_texts):
            raise ValueError(
                f"corpus_embeddings has shape {doc_vectors.shape}; expected ({len(doc_texts)}, dim)"
            )
    run: Run = {}
    for start in range(0, len(query_texts), batch_size):
        batch = query_texts[start : start + batch_size]
        query_vectors = _embed(embed, batch, "queries")
        if query_vectors.shape[1] != doc_vectors.shape[1]:
            raise ValueError(
                f"query vectors have dim {query_vectors.shape[1]}, corpus vectors "
                f"{doc_vectors.shape[1]}"
            )
        positions, scores = top_n_columns(query_vectors @ doc_vectors.T, top_n)
        for offset, (row_positions, row_scores) in enumerate(zip(positions, scores, strict=True)):
            run[query_ids[start + offset]] = {
                doc_ids[int(p)]: float(s) for p, s in zip(row_positions, row_scores, strict=True)
            }
    return run
