"""Pure token arithmetic for (query, document) pairs: truncation, chunk windows, batching.

Nothing here touches a tokenizer or a model: inputs are lists of token ids and lengths, so
every rule is tested exhaustively without weights. ``_hf`` and the backends do the I/O.

Example:
    >>> truncate_pair([1, 2], [3, 4, 5, 6], budget=4)
    ([1, 2], [3, 4], True)
    >>> chunk_windows(10, window=4, overlap=1)
    [(0, 4), (3, 7), (6, 10)]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "max": max,
    "mean": lambda values: sum(values) / len(values),
    "first": lambda values: values[0],
}
AGGREGATES: tuple[str, ...] = tuple(_AGGREGATE)


@dataclass(frozen=True, slots=True)
class PairTemplate:
    """Where a tokenizer puts its special tokens around a (query, document) pair.

    ``ids = prefix + query + middle + document + suffix``; the ``*_type`` fields are the
    token type ids of each part (BERT uses 0 for the query side and 1 for the document).

    Example:
        >>> t = PairTemplate((101,), (102,), (102,), 0, 0, 0, 1, 1)
        >>> t.assemble([7, 8], [9])
        ([101, 7, 8, 102, 9, 102], [0, 0, 0, 0, 1, 1])
    """

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_type: int
    query_type: int
    middle_type: int
    document_type: int
    suffix_type: int

    @property
    def num_special(self) -> int:
        """Number of special tokens the template adds to a pair."""
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def assemble(
        self, query: Sequence[int], document: Sequence[int]
    ) -> tuple[list[int], list[int]]:
        """Input ids and token type ids of one pair."""
        ids = [*self.prefix, *query, *self.middle, *document, *self.suffix]
        types = (
            [self.prefix_type] * len(self.prefix)
            + [self.query_type] * len(query)
            + [self.middle_type] * len(self.middle)
            + [self.document_type] * len(document)
            + [self.suffix_type] * len(self.suffix)
        )
        return ids, types


def template_from_probe(
    ids: Sequence[int],
    type_ids: Sequence[int] | None,
    query: Sequence[int],
    document: Sequence[int],
) -> PairTemplate:
    """Recover a ``PairTemplate`` from one pair the tokenizer encoded with special tokens.

    Asking the tokenizer for a real pair (rather than hard-coding ``[CLS] q [SEP] d [SEP]``)
    makes every tokenizer family work: BERT, RoBERTa/XLM-R (``<s> q </s></s> d </s>``), ...

    Args:
        ids: The pair's ids with special tokens.
        type_ids: Its token type ids, or ``None`` when the model takes none.
        query: The query's ids without special tokens.
        document: The document's ids without special tokens (differs from ``query``).

    Raises:
        ValueError: The pair is not ``prefix + query + middle + document + suffix``.

    Example:
        >>> template_from_probe([101, 7, 102, 9, 102], [0, 0, 0, 1, 1], [7], [9]).suffix
        (102,)
    """
    ids, q, d = list(ids), list(query), list(document)
    extra = len(ids) - len(q) - len(d)
    if extra < 0 or not q or not d:
        raise ValueError("probe pair is shorter than its parts")
    types = list(type_ids) if type_ids is not None else [0] * len(ids)
    for p in range(extra + 1):
        if ids[p : p + len(q)] != q:
            continue
        for m in range(extra - p + 1):
            start = p + len(q) + m
            if ids[start : start + len(d)] != d:
                continue
            s = extra - p - m
            template = PairTemplate(
                prefix=tuple(ids[:p]),
                middle=tuple(ids[p + len(q) : start]),
                suffix=tuple(ids[start + len(d) :]),
                prefix_type=types[0] if p else 0,
                query_type=types[p],
                middle_type=types[p + len(q)] if m else types[p],
                document_type=types[start],
                suffix_type=types[-1] if s else types[start],
            )
            if template.assemble(q, d) == (ids, types):
                return template
    raise ValueError("cannot locate the query and document inside the tokenizer's pair encoding")


def truncate_pair(
    query: Sequence[int], document: Sequence[int], budget: int
) -> tuple[list[int], list[int], bool]:
    """Cut a pair to ``budget`` content tokens: the document's tail first.

    The query is cut only when it alone exceeds the budget; it then keeps
    ``budget - min(len(document), budget // 2)`` tokens so the document still gets at least
    half of the budget (a score of a query against nothing means nothing). ``budget`` is at
    least 2 (the constructor's ``max_length`` check).

    Returns:
        ``(query, document, truncated)``.

    Example:
        >>> truncate_pair([1] * 6, [2] * 6, budget=4)
        ([1, 1], [2, 2], True)
    """
    if len(query) + len(document) <= budget:
        return list(query), list(document), False
    kept = query_budget(len(query), len(document), budget)
    return list(query[:kept]), list(document[: budget - kept]), True


def query_budget(query_len: int, document_len: int, budget: int) -> int:
    """How many query tokens survive ``truncate_pair`` (used to size chunk windows).

    Example:
        >>> query_budget(3, 100, budget=10), query_budget(30, 100, budget=10)
        (3, 5)
    """
    if query_len <= budget:
        return query_len
    return budget - min(document_len, budget // 2)


def chunk_windows(length: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` windows of at most ``window`` tokens covering ``length`` tokens.

    Consecutive windows share exactly ``overlap`` tokens (``0 <= overlap < window``, as
    ``chunk_window`` and ``effective_overlap`` make them); the last one ends at ``length``.
    An empty document gives one empty window so that it is still scored.

    Example:
        >>> chunk_windows(5, window=5, overlap=2)
        [(0, 5)]
        >>> chunk_windows(7, window=4, overlap=2)
        [(0, 4), (2, 6), (4, 7)]
    """
    if length <= window:
        return [(0, length)]
    stride = window - overlap
    windows = []
    start = 0
    while True:
        end = min(start + window, length)
        windows.append((start, end))
        if end == length:
            return windows
        start += stride


def chunk_window(room: int, chunk_size: int | None) -> int:
    """Document tokens per window in chunk mode: ``chunk_size``, capped by the ``room`` that
    ``max_length`` leaves after the query and special tokens (``None``: all of that room).

    The window is its own size, not ``max_length``: cross-encoders are trained on short
    passages, and a relevant sentence in a window of ~500 tokens is outweighed by the filler
    around it. The default, 192 tokens, holds 99% of MS MARCO passages whole (DL19 corpus
    with the MiniLM WordPiece tokenizer: median 74 tokens, 95th percentile 152, 99th 185,
    longest 258), so an ordinary passage is one window scored exactly as in truncate mode,
    and with a query it stays within the 256-token pairs such models are commonly trained on.

    Example:
        >>> chunk_window(497, 192), chunk_window(100, 192), chunk_window(497, None)
        (192, 100, 497)
    """
    return room if chunk_size is None else max(1, min(room, chunk_size))


def effective_overlap(overlap: int, window: int) -> int:
    """``overlap`` capped at half the window, so a long query cannot make chunking quadratic.

    Example:
        >>> effective_overlap(128, 500), effective_overlap(128, 100)
        (128, 50)
    """
    return max(0, min(overlap, window // 2))


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Positions grouped into batches of similar length, longest first.

    Sorting before padding keeps padded tokens (wasted compute) to a minimum; longest first
    makes an out-of-memory error show up on the first batch, not the last. Ties keep input
    order, so the plan is deterministic.

    Example:
        >>> length_sorted_batches([3, 9, 1, 7], batch_size=2)
        [[1, 3], [0, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


# A forward pass's fixed cost in padded token positions, against which ``padding_aware_batches``
# weighs the padding an extra batch saves. On the first 8 DL19 queries' BM25 top-100 (MiniLM
# tokens, max_length 512, one query per call) fixed batches of 32 pad 24% of the executed
# tokens and these plans 9% (44 batches instead of 32). 256 positions (a few small pairs) keeps
# batches large enough for efficient matmuls; benchmarks/profile_exact_path.py times it against
# 64 and 1024 and fixed batches.
BATCH_OVERHEAD_TOKENS = 256


def padding_aware_batches(
    lengths: Sequence[int], batch_size: int, overhead: int = BATCH_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Positions in length-sorted batches of at most ``batch_size`` rows, cut where the padding
    saved outweighs another forward pass.

    Rows are sorted longest first (ties keep input order, as ``length_sorted_batches``), then
    split into consecutive batches minimising ``sum(rows x longest row) + overhead x batches``:
    the padded token positions a model executes plus each pass's fixed cost (dynamic
    programming over the cut points, O(len(lengths) x batch_size)). A run of equal lengths is
    cut into full batches; a long document among short ones gets a batch of its own instead of
    padding 31 others to its length.

    Args:
        lengths: Tokens per row.
        batch_size: Most rows per batch.
        overhead: A batch's fixed cost in token positions (``BATCH_OVERHEAD_TOKENS``).

    Example:
        >>> padding_aware_batches([10, 10, 10, 10], batch_size=2)
        [[0, 1], [2, 3]]
        >>> padding_aware_batches([500, 20, 20, 20], batch_size=4)
        [[0], [1, 2, 3]]
        >>> padding_aware_batches([500, 20, 20, 20], batch_size=4, overhead=10_000)
        [[0, 1, 2, 3]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    width = np.array([lengths[i] for i in order], dtype=np.float64)
    n = len(order)
    best = np.zeros(n + 1)  # best[j]: the cheapest cost of the first j sorted rows
    cut = [0] * (n + 1)  # cut[j]: where the last batch of that cheapest plan starts
    for j in range(1, n + 1):
        starts = np.arange(max(0, j - batch_size), j)  # the last batch is rows i..j-1
        costs = best[starts] + (j - starts) * width[starts] + overhead
        # The last minimum on ties: full batches first and the short one last.
        k = len(costs) - 1 - int(np.argmin(costs[::-1]))
        best[j], cut[j] = costs[k], int(starts[k])
    bounds = [n]
    while bounds[-1] > 0:
        bounds.append(cut[bounds[-1]])
    bounds.reverse()
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def restore_order(batches: Sequence[Sequence[int]], values: Sequence[T]) -> list[T]:
    """Undo ``length_sorted_batches``: ``values`` follow the plan's order; return input order.

    Example:
        >>> restore_order([[1, 3], [0, 2]], ["b", "d", "a", "c"])
        ['a', 'b', 'c', 'd']
    """
    flat = [i for batch in batches for i in batch]
    out: list[T | None] = [None] * len(flat)
    for position, value in zip(flat, values, strict=True):
        out[position] = value
    return out  # type: ignore[return-value]


def aggregate_chunks(
    scores: Sequence[float], owners: Sequence[int], n_documents: int, method: str
) -> tuple[list[float], list[int]]:
    """Per-document scores from chunk scores, and each document's best chunk.

    Args:
        scores: One score per chunk.
        owners: The document each chunk belongs to; a document's chunks appear in text order.
        n_documents: Number of documents; each owns at least one chunk.
        method: ``"max"`` (best chunk), ``"mean"`` or ``"first"`` (the first chunk only).

    Returns:
        ``(document_scores, best_chunk_positions)``; the best chunk is the highest-scoring
        one whatever ``method`` is (ties: the earliest), as a position in ``scores``.

    Example:
        >>> aggregate_chunks([0.1, 0.9, 0.4], [0, 0, 1], 2, "mean")
        ([0.5, 0.4], [1, 2])
    """
    groups: list[list[int]] = [[] for _ in range(n_documents)]
    for position, owner in enumerate(owners):
        groups[owner].append(position)
    doc_scores, best = [], []
    for group in groups:
        values = [float(scores[p]) for p in group]
        top = max(range(len(group)), key=lambda k: (values[k], -k))
        best.append(group[top])
        doc_scores.append(_AGGREGATE[method](values))
    return doc_scores, best
