"""Rerank a Ray Data dataset of ``(query, documents)`` rows on a pool of actors.

Each actor builds the reranker once from its spec string, then reranks batch after batch with
:func:`rerankkit.distributed._rows.rerank_rows`. Ray is imported only when
:func:`rerank_dataset` is called (``pip install "rerankkit[ray]"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rerankkit._optional import require
from rerankkit._specs import RerankerSpec, build_reranker, parse_spec
from rerankkit._validation import check_instance, check_int, check_number, check_top_n
from rerankkit.distributed._rows import rerank_rows

if TYPE_CHECKING:
    import pyarrow
    import ray.data

RANKED_INDICES = "ranked_indices"
"""Output column: positions into the row's documents, best first (``list[int]``)."""
RELEVANCE_SCORES = "relevance_scores"
"""Output column: the score of each ranked position (``list[float]``, the reranker's scale)."""
RERANK_ERROR = "rerank_error"
"""Output column: ``"ErrorType: message"`` for a row that failed, null for a row that did not."""
OUTPUT_COLUMNS = (RANKED_INDICES, RELEVANCE_SCORES, RERANK_ERROR)


class RerankBatches:
    """The Ray Data callable class: builds the reranker once per actor, reranks Arrow batches.

    Input columns pass through untouched (the batch is an Arrow table and only gains the
    three :data:`OUTPUT_COLUMNS`), so no value is converted, dropped or duplicated.
    """

    def __init__(
        self, spec: RerankerSpec, query_column: str, documents_column: str, top_n: int | None
    ) -> None:
        self.reranker = build_reranker(spec)
        self.query_column = query_column
        self.documents_column = documents_column
        self.top_n = top_n

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        import pyarrow as pa

        for name in (self.query_column, self.documents_column):
            if name not in batch.column_names:
                raise ValueError(f"batch has no column {name!r} (columns: {batch.column_names})")
        outcomes = rerank_rows(
            self.reranker,
            batch.column(self.query_column).to_pylist(),
            batch.column(self.documents_column).to_pylist(),
            top_n=self.top_n,
            query_column=self.query_column,
            documents_column=self.documents_column,
        )
        columns = {
            RANKED_INDICES: (pa.list_(pa.int64()), [o.ranked_indices for o in outcomes]),
            RELEVANCE_SCORES: (pa.list_(pa.float64()), [o.relevance_scores for o in outcomes]),
            RERANK_ERROR: (pa.string(), [o.error for o in outcomes]),
        }
        for name, (kind, values) in columns.items():
            batch = batch.append_column(name, pa.array(values, type=kind))
        return batch


def _check_columns(schema: Any, query_column: str, documents_column: str) -> None:
    """Refuse a missing input column, an output column already there, or a documents column
    of strings (``schema``: the dataset's, when Ray can tell it before running)."""
    names = list(schema.names)
    for argument, column in (
        ("query_column", query_column),
        ("documents_column", documents_column),
    ):
        if column not in names:
            raise ValueError(f"{argument}: the dataset has no column {column!r} (columns: {names})")
    clashes = [name for name in OUTPUT_COLUMNS if name in names]
    if clashes:
        raise ValueError(
            f"the dataset already has a column named {clashes[0]!r}, which rerank_dataset "
            f"writes; rename it first (dataset.rename_columns({{{clashes[0]!r}: ...}}))"
        )
    kind = dict(zip(names, schema.types, strict=True))[documents_column]
    if str(kind) in ("string", "large_string", "large_utf8", "utf8", "binary"):
        raise TypeError(
            f"documents_column: column {documents_column!r} holds {kind} values; it must hold "
            "a list of document strings per row"
        )


def _check_concurrency(concurrency: Any) -> Any:
    """``concurrency`` as Ray Data takes it: an actor count, a ``(min, max)`` autoscaling
    range, or ``None`` (Ray's autoscaling default)."""
    if concurrency is None:
        return None
    if isinstance(concurrency, Sequence) and not isinstance(concurrency, (str, bytes)):
        if len(concurrency) != 2:
            raise ValueError(f"concurrency must be an int or a (min, max) pair, got {concurrency}")
        low = check_int(concurrency[0], "concurrency[0]", minimum=1)
        return low, check_int(concurrency[1], "concurrency[1]", minimum=low)
    return check_int(concurrency, "concurrency", minimum=1)


def rerank_dataset(
    dataset: ray.data.Dataset,
    reranker_spec: str | RerankerSpec,
    *,
    query_column: str,
    documents_column: str,
    top_n: int | None = None,
    batch_size: int = 32,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
) -> ray.data.Dataset:
    """Rerank every row's documents for its query, on Ray Data actors; lazy, like Ray Data.

    Each row holds one query (a ``str`` column) and its candidates (a column of lists of
    ``str``). The output has every input column unchanged plus three columns:

    ==================== ================ =====================================================
    column               type             value
    ==================== ================ =====================================================
    ``ranked_indices``   ``list[int]``    positions into the row's documents, best first,
                                          cut to ``top_n``; null if the row failed
    ``relevance_scores`` ``list[float]``  the score of each ranked position, on the
                                          reranker's scale; null if the row failed
    ``rerank_error``     ``str``          null if the row was reranked, else
                                          ``"ErrorType: message"``
    ==================== ================ =====================================================

    A row is never dropped or duplicated: a row whose query or documents are bad (null, not
    a string) or whose scoring raised keeps its input columns and reports the error; the
    other rows are unaffected. Count the failures with
    ``out.filter(expr="rerank_error is not null").count()``. Row order follows Ray Data's
    execution options (``DataContext.get_current().execution_options.preserve_order``);
    join on an id column rather than on position.

    Each actor builds the reranker once from ``reranker_spec`` (see :mod:`rerankkit._specs`)
    with ``rerankkit.build_reranker``; a pointwise reranker (cross-encoder, bi-encoder)
    scores each batch of rows in one ``score_many`` call, sharing model batches across rows.
    A row's ranking equals ``build_reranker(spec).rerank(query, documents, top_n=top_n)``
    (up to float rounding of differently padded model batches).

    Args:
        dataset: The rows to rerank (a ``ray.data.Dataset``).
        reranker_spec: What each actor builds, e.g. ``"cross-encoder:/models/ce?dtype=bfloat16"``.
        query_column: The column holding each row's query.
        documents_column: The column holding each row's list of document strings.
        top_n: Keep the best ``top_n`` per row (``None``: all).
        batch_size: Rows per call of an actor (a cross-encoder then scores up to
            ``batch_size`` x documents-per-row pairs, in its own ``batch_size`` model batches).
        concurrency: Actors: an int for a fixed pool, ``(min, max)`` for an autoscaling one,
            ``None`` for Ray Data's default (autoscaling from 1).
        num_cpus: CPUs reserved per actor (Ray also sets the actor's torch/OpenMP threads
            to it).
        num_gpus: GPUs per actor (``0``: CPU; set the spec's ``device`` option to match).

    Returns:
        A new lazy ``ray.data.Dataset``; nothing runs until it is consumed (the column checks
        read ``dataset.schema()``, which Ray may compute by running the dataset's first
        block; a schema Ray cannot tell is checked batch by batch instead).

    Raises:
        ValueError: A bad spec, a missing column, an output column already in the dataset,
            a bad ``top_n``/``batch_size``/``concurrency``/``num_cpus``/``num_gpus``, each
            naming the argument.
        TypeError: An argument of the wrong type, or a ``documents_column`` of strings.
        MissingExtraError: Ray Data is not installed (``pip install "rerankkit[ray]"``).

    Example (a local Ray; see ``tests/test_distributed.py``)::

        import ray.data
        from rerankkit.distributed import rerank_dataset

        rows = ray.data.from_items([{"id": 1, "q": "red apple", "docs": ["pear", "apple"]}])
        out = rerank_dataset(rows, "keyword:", query_column="q", documents_column="docs")
        out.take_all()
        # [{'id': 1, 'q': 'red apple', 'docs': ['pear', 'apple'],
        #   'ranked_indices': [1, 0], 'relevance_scores': [1.0, 0.0], 'rerank_error': None}]
    """
    spec = parse_spec(reranker_spec) if isinstance(reranker_spec, str) else reranker_spec
    if not isinstance(spec, RerankerSpec):
        raise TypeError(f"reranker_spec must be a spec string, got {type(reranker_spec).__name__}")
    check_instance(query_column, str, "query_column")
    check_instance(documents_column, str, "documents_column")
    if query_column == documents_column:
        raise ValueError(f"query_column and documents_column are both {query_column!r}")
    top_n = check_top_n(top_n)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    num_cpus = check_number(num_cpus, "num_cpus", minimum=0)
    num_gpus = check_number(num_gpus, "num_gpus", minimum=0)
    concurrency = _check_concurrency(concurrency)
    if not isinstance(dataset, require("ray.data", "ray").Dataset):
        raise TypeError(f"dataset must be a ray.data.Dataset, got {type(dataset).__name__}")
    schema = dataset.schema()
    if schema is not None:  # else unknown until run: RerankBatches checks each batch instead
        _check_columns(schema, query_column, documents_column)
    reranked: ray.data.Dataset = dataset.map_batches(
        RerankBatches,
        fn_constructor_args=(spec, query_column, documents_column, top_n),
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=concurrency,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        udf_modifying_row_count=False,
    )
    return reranked
