"""Rerank a batch of dataset rows, one ``(query, documents)`` pair a row, without losing a row.

Pure Python (no Ray): :func:`rerank_rows` is what every Ray Data actor of
:func:`rerankkit.distributed.rerank_dataset` runs on its batch, and it is tested without Ray.

Each row gets a :class:`RowOutcome`: the ranked positions and their scores, or the error that
stopped that row. A row's bad value (a null query, a non-string document) or a failure while
scoring it fails that row only; the other rows of the batch are still reranked.

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> outcomes = rerank_rows(
    ...     KeywordReranker(), ["red apple", None], [["pear", "apple"], ["x"]], top_n=1
    ... )
    >>> outcomes[0]
    RowOutcome(ranked_indices=[1], relevance_scores=[1.0], error=None)
    >>> outcomes[1].error
    'TypeError: query: query must be a str, got NoneType'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rerankkit._base import Reranker
from rerankkit._ordering import rank
from rerankkit._result import RerankResult
from rerankkit._validation import check_documents, check_query
from rerankkit.errors import InvalidTextError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What reranking one row gave.

    Attributes:
        ranked_indices: Positions into the row's documents, best first, cut to ``top_n``;
            ``None`` when the row failed.
        relevance_scores: The score of each ranked position (the reranker's scale), aligned
            with ``ranked_indices``; ``None`` when the row failed.
        error: ``"ErrorType: message"`` when the row failed, else ``None``.
    """

    ranked_indices: list[int] | None
    relevance_scores: list[float] | None
    error: str | None = None


def _failed(error: BaseException) -> RowOutcome:
    return RowOutcome(None, None, f"{type(error).__name__}: {error}")


def _ranked(results: Sequence[RerankResult]) -> RowOutcome:
    return RowOutcome([r.index for r in results], [r.score for r in results])


def _check_row(
    query: Any, documents: Any, query_column: str, documents_column: str
) -> tuple[str, list[str]]:
    try:
        query = check_query(query)
    except InvalidTextError as error:
        raise InvalidTextError(query_column, error.offset, error.character) from None
    except (TypeError, ValueError) as error:  # name the column: the caller knows it
        raise type(error)(f"{query_column}: {error}") from None
    return query, check_documents(documents, documents_column)


def rerank_rows(
    reranker: Reranker,
    queries: Sequence[Any],
    documents: Sequence[Any],
    *,
    top_n: int | None = None,
    query_column: str = "query",
    documents_column: str = "documents",
) -> list[RowOutcome]:
    """Rerank each row's documents for its query; one outcome per row, in row order.

    A pointwise reranker (``reranker.pointwise``) scores every valid row of the batch in one
    ``score_many`` call, so a cross-encoder shares length-sorted batches across rows; if that
    call fails, the rows are scored one by one so that only the failing rows are marked.
    Other rerankers (listwise LLM, fusion, cascade) are called per row with ``rerank``. Either
    way a row's ranking equals ``reranker.rerank(query, documents, top_n=top_n)`` (up to float
    rounding of differently padded batches).

    Args:
        reranker: Any reranker.
        queries: One query per row (anything; a non-string or blank query fails its row).
        documents: One sequence of document strings per row (an empty one ranks to ``[]``).
        top_n: Keep the best ``top_n`` of each row (``None``: all); assumed validated.
        query_column: The query column's name, for row errors.
        documents_column: The documents column's name, for row errors.

    Returns:
        One :class:`RowOutcome` per row; a failed row has ``error`` set and no ranking.

    Raises:
        ValueError: ``queries`` and ``documents`` differ in length.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> documents = [["a cat", "cat cat"], ["cat", 7]]
        >>> rows = rerank_rows(KeywordReranker(), ["cat", "cat"], documents)
        >>> rows[0]
        RowOutcome(ranked_indices=[1, 0], relevance_scores=[2.0, 1.0], error=None)
        >>> rows[1].error
        'TypeError: documents[1] must be a str, got int'
    """
    if len(queries) != len(documents):
        raise ValueError(f"{len(queries)} queries for {len(documents)} rows of documents")
    outcomes: dict[int, RowOutcome] = {}
    valid: dict[int, tuple[str, list[str]]] = {}
    for row, (query, docs) in enumerate(zip(queries, documents, strict=True)):
        try:
            valid[row] = _check_row(query, docs, query_column, documents_column)
        except (TypeError, ValueError) as error:
            outcomes[row] = _failed(error)
    if reranker.pointwise and len(valid) > 1:
        try:
            scores = reranker.score_many(list(valid.values()))
        except Exception:  # find the failing rows one by one below
            logger.warning("batch of %d rows failed; scoring them one by one", len(valid))
        else:
            for row, row_scores in zip(valid, scores, strict=True):
                outcomes[row] = _ranked(rank(row_scores, top_n=top_n))
    for row, (query, docs) in valid.items():
        if row in outcomes:
            continue
        try:
            results = reranker.rerank(query, docs, top_n=top_n)
        except Exception as error:  # reported in the row, never lost: that is the contract
            outcomes[row] = _failed(error)
        else:
            outcomes[row] = _ranked(results)
    return [outcomes[row] for row in range(len(queries))]  # each row: invalid, or scored above
