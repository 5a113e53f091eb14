"""Pure token arithmetic of backends._pairs: truncation, chunk windows, batching, aggregation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankkit.backends._pairs import (
    PairTemplate,
    aggregate_chunks,
    chunk_windows,
    effective_overlap,
    length_sorted_batches,
    padding_aware_batches,
    query_budget,
    restore_order,
    template_from_probe,
    truncate_pair,
)

ids = st.lists(st.integers(min_value=1000, max_value=1100), max_size=60)


@given(ids, ids, st.integers(min_value=2, max_value=80))
def test_truncate_pair_fits_and_cuts_the_document_first(query, document, budget):
    q, d, cut = truncate_pair(query, document, budget)
    assert len(q) + len(d) <= budget
    assert q == query[: len(q)] and d == document[: len(d)]  # prefixes, nothing reordered
    assert cut == (len(q) + len(d) < len(query) + len(document))
    if len(query) + len(document) <= budget:
        assert (q, d) == (query, document)
    if len(query) <= budget:
        assert q == query  # the query is cut only when it alone exceeds the budget
    else:
        assert len(d) == min(len(document), budget // 2)  # the document keeps half the budget
        assert len(q) + len(d) == budget
    assert len(q) == query_budget(len(query), len(document), budget)


def test_truncate_pair_examples():
    assert truncate_pair([1, 2], [3, 4, 5], 10) == ([1, 2], [3, 4, 5], False)
    assert truncate_pair([1, 2], [3, 4, 5], 4) == ([1, 2], [3, 4], True)
    assert truncate_pair([1] * 9, [2] * 3, 8) == ([1] * 5, [2] * 3, True)
    assert truncate_pair([1] * 9, [], 8) == ([1] * 8, [], True)


@given(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=59),
)
def test_chunk_windows_cover_fit_and_overlap(length, window, overlap):
    overlap %= window  # 0 <= overlap < window: what chunk_window/effective_overlap give
    windows = chunk_windows(length, window, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == length
    covered = set()
    for start, end in windows:
        assert 0 <= start <= end <= length
        assert end - start <= window  # each window fits beside the query
        covered.update(range(start, end))
    assert covered == set(range(length))  # every token is scored
    for (s1, e1), (s2, _) in itertools.pairwise(windows):
        assert s2 > s1  # progress
        assert e1 - s2 == overlap  # exact overlap between consecutive windows
        assert e1 - s1 == window  # only the last window may be short


def test_chunk_windows_examples():
    assert chunk_windows(0, 5, 1) == [(0, 0)]
    assert chunk_windows(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert chunk_windows(8, 4, 0) == [(0, 4), (4, 8)]
    assert effective_overlap(10, 8) == 4 and effective_overlap(3, 8) == 3


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=40), st.integers(1, 9))
def test_batching_plan_is_a_length_sorted_permutation_and_restore_inverts_it(lengths, size):
    plan = length_sorted_batches(lengths, size)
    flat = [i for batch in plan for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(batch) <= size for batch in plan)
    assert all(len(batch) == size for batch in plan[:-1])
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    values = [f"v{i}" for i in flat]  # what a model would return in plan order
    assert restore_order(plan, values) == [f"v{i}" for i in range(len(lengths))]


def _plan_cost(lengths, plan, overhead):
    return sum(len(batch) * max(lengths[i] for i in batch) + overhead for batch in plan)


@given(
    st.lists(st.integers(min_value=1, max_value=60), max_size=9),
    st.integers(1, 4),
    st.sampled_from([0, 7, 50, 1000]),
)
def test_padding_aware_batches_are_the_cheapest_length_sorted_split(lengths, size, overhead):
    plan = padding_aware_batches(lengths, size, overhead)
    if not lengths:
        assert plan == []
        return
    flat = [i for batch in plan for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(batch) <= size for batch in plan)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    # Every split of the sorted rows into consecutive batches of at most `size`, enumerated.
    (order,) = length_sorted_batches(lengths, len(lengths))
    cheapest = float("inf")
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        bounds = [0, *[k + 1 for k, c in enumerate(cuts) if c], len(order)]
        split = [order[a:b] for a, b in itertools.pairwise(bounds)]
        if all(len(batch) <= size for batch in split):
            cheapest = min(cheapest, _plan_cost(lengths, split, overhead))
    assert _plan_cost(lengths, plan, overhead) == cheapest


def test_padding_aware_batches_give_a_long_row_its_own_batch():
    lengths = [300] + [40] * 31
    assert padding_aware_batches(lengths, 32) == [[0], list(range(1, 32))]
    assert padding_aware_batches([40] * 70, 32) == [
        list(range(32)),
        list(range(32, 64)),
        list(range(64, 70)),
    ]


def test_batching_ties_keep_input_order_and_a_short_plan_raises():
    assert length_sorted_batches([2, 5, 2, 5], 3) == [[1, 3, 0], [2]]
    with pytest.raises(ValueError, match="shorter"):
        restore_order([[0, 1]], ["a"])


def test_aggregate_chunks_methods():
    scores = [0.2, 0.9, 0.5, 0.7, 0.7]
    owners = [0, 0, 0, 1, 1]
    assert aggregate_chunks(scores, owners, 2, "max") == ([0.9, 0.7], [1, 3])
    mean, best = aggregate_chunks(scores, owners, 2, "mean")
    assert mean == pytest.approx([1.6 / 3, 0.7]) and best == [1, 3]
    assert aggregate_chunks(scores, owners, 2, "first") == ([0.2, 0.7], [1, 3])


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=30), st.data())
def test_aggregate_max_is_the_best_chunk_of_each_document(scores, data):
    owners = sorted(
        data.draw(st.lists(st.integers(0, 3), min_size=len(scores), max_size=len(scores)))
    )
    present = sorted(set(owners))
    remap = {o: k for k, o in enumerate(present)}
    owners = [remap[o] for o in owners]
    doc_scores, best = aggregate_chunks(scores, owners, len(present), "max")
    for doc, (score, position) in enumerate(zip(doc_scores, best, strict=True)):
        mine = [s for s, o in zip(scores, owners, strict=True) if o == doc]
        assert score == max(mine) == scores[position] and owners[position] == doc


@pytest.mark.parametrize(
    ("ids", "types", "template"),
    [
        # BERT: [CLS] q [SEP] d [SEP]
        (
            [101, 7, 8, 102, 9, 102],
            [0, 0, 0, 0, 1, 1],
            PairTemplate((101,), (102,), (102,), 0, 0, 0, 1, 1),
        ),
        # RoBERTa / XLM-R: <s> q </s></s> d </s>, no token types
        ([0, 7, 8, 2, 2, 9, 2], None, PairTemplate((0,), (2, 2), (2,), 0, 0, 0, 0, 0)),
        # no special tokens at all
        ([7, 8, 9], None, PairTemplate((), (), (), 0, 0, 0, 0, 0)),
    ],
)
def test_template_from_probe_recovers_each_layout(ids, types, template):
    found = template_from_probe(ids, types, [7, 8], [9])
    assert found == template
    assert found.assemble([7, 8], [9]) == (ids, types or [0] * len(ids))
    assert found.num_special == len(ids) - 3


def test_template_from_probe_rejects_a_pair_it_cannot_explain():
    with pytest.raises(ValueError, match="cannot locate"):
        template_from_probe([101, 7, 102, 5, 102], None, [7], [9])
