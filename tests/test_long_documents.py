"""Long documents: chunk mode finds a relevant sentence beyond max_length; truncate does not."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TRAINED_CE, requires_trained_ce
from rerankkit import CrossEncoderReranker, result_metadata
from rerankkit.backends._pairs import chunk_windows, effective_overlap, query_budget

QUERY = "at what temperature does water boil on the summit of mount everest"
ANSWER = (
    "On the summit of Mount Everest water boils at only about 70 degrees Celsius, because the "
    "air pressure there is roughly a third of the pressure at sea level."
)
FILLER = " ".join(
    [
        "The first bicycles of the early nineteenth century had no pedals and were pushed along "
        "by the rider's feet.",
        "Later designs added cranks to the front wheel, which grew larger to increase speed.",
        "The safety bicycle, with two wheels of equal size and a chain drive, appeared in the "
        "eighteen eighties and quickly became popular.",
        "Pneumatic tyres made riding on rough roads far more comfortable.",
        "Cycling clubs organised races and long tours through the countryside.",
        "Today bicycles are built from steel, aluminium, titanium or carbon fibre.",
        "Gears allow riders to keep a steady cadence on hills and on flat roads.",
        "Many cities now paint separate lanes so that cyclists can ride safely in traffic.",
    ]
)
LONG_RELEVANT = " ".join([FILLER] * 5) + " " + ANSWER  # the answer sits beyond token 512
DOCUMENTS = [
    "Water boils at 100 degrees Celsius at sea level.",
    "Mount Everest is the highest mountain on Earth, 8,849 metres above sea level.",
    LONG_RELEVANT,
    FILLER,
]


# The trained cross-encoder was fine-tuned on pairs of at most 256 tokens (SOURCE.md): in a
# 512-token window the one relevant sentence is drowned by ~470 tokens of filler and scores
# low. Chunk mode's windows have their own size (chunk_size, default 192 document tokens),
# so the DEFAULT settings (max_length=None: the declared 256) find it. The default overlap
# (64 tokens) is longer than ANSWER, so some window holds the whole sentence wherever the
# boundaries fall.
CHUNK_LENGTH = 256
DEFAULT_WINDOW = 192


@pytest.fixture(scope="module")
def trained_chunk() -> CrossEncoderReranker:
    return CrossEncoderReranker(TRAINED_CE, device="cpu", long_documents="chunk")  # defaults


@pytest.mark.slow
@requires_trained_ce
def test_chunk_mode_ranks_the_long_relevant_document_first(trained_chunk):
    tok = trained_chunk.tokenizer
    tokens = tok(LONG_RELEVANT, add_special_tokens=False, verbose=False)["input_ids"]
    at = LONG_RELEVANT.index(ANSWER)
    assert len(tok(LONG_RELEVANT[:at], verbose=False)["input_ids"]) > 512  # answer after 512

    for length in (512, CHUNK_LENGTH):
        truncate = CrossEncoderReranker(TRAINED_CE, device="cpu", max_length=length)
        truncated = truncate.rerank(QUERY, DOCUMENTS)
        assert truncated[0].index != 2
        assert truncate.last_truncated == 1

    chunked = trained_chunk.rerank(QUERY, DOCUMENTS)
    assert chunked[0].index == 2
    start, end = chunked[0].details["chunk_span"]
    assert start <= at and at + len(ANSWER) <= end  # the best window holds the answer
    assert trained_chunk.max_length == 256  # the declared length: the window is its own size
    assert chunked[0].details["chunks"] == len(chunk_windows(len(tokens), DEFAULT_WINDOW, 64))
    assert result_metadata(chunked[0])["chunk_span"] == (start, end)
    # short documents are one chunk whose span is the whole text, scored as in truncate mode
    by_index = {r.index: r for r in chunked}
    assert by_index[0].details == {"chunks": 1, "chunk_span": (0, len(DOCUMENTS[0]))}
    truncate_scores = {r.index: r.score for r in truncated}
    assert by_index[0].score == pytest.approx(truncate_scores[0], abs=1e-5)


@pytest.mark.slow
@requires_trained_ce
def test_first_chunk_aggregate_equals_truncation_and_mean_is_at_most_max():
    truncate = CrossEncoderReranker(TRAINED_CE, device="cpu", max_length=CHUNK_LENGTH)
    whole = {"max_length": CHUNK_LENGTH, "long_documents": "chunk", "chunk_size": None}
    first = CrossEncoderReranker(TRAINED_CE, device="cpu", aggregate="first", **whole)
    mean = CrossEncoderReranker(TRAINED_CE, device="cpu", aggregate="mean", **whole)
    best_of_whole = CrossEncoderReranker(TRAINED_CE, device="cpu", **whole)
    docs = [LONG_RELEVANT, FILLER]
    np.testing.assert_allclose(first.score(QUERY, docs), truncate.score(QUERY, docs), atol=1e-5)
    best = best_of_whole.score(QUERY, docs)
    means = mean.score(QUERY, docs)
    assert means[0] < best[0] and means[1] == pytest.approx(best[1], abs=1e-6)


def test_chunk_counts_and_spans_follow_the_window_arithmetic(tiny_cross_encoder):
    overlap = 5
    reranker = CrossEncoderReranker(
        tiny_cross_encoder,
        device="cpu",
        max_length=32,
        long_documents="chunk",
        chunk_overlap=overlap,
        batch_size=4,
    )
    query = "water boiling point"
    docs = [ANSWER, FILLER, "tiny", "", ANSWER + " " + FILLER]
    results = reranker.rerank(query, docs)
    assert sorted(r.index for r in results) == list(range(len(docs)))
    tok = reranker.tokenizer
    query_len = len(tok(query, add_special_tokens=False)["input_ids"])
    budget = 32 - 3  # [CLS] q [SEP] d [SEP]
    for result in results:
        text = docs[result.index]
        if not text.strip():
            continue  # an empty document is never sent to the model (issue 11, kind 8)
        ids = tok(text, add_special_tokens=False, verbose=False)["input_ids"]
        window = budget - query_budget(query_len, len(ids), budget)
        expected = chunk_windows(len(ids), window, effective_overlap(overlap, window))
        assert result.details["chunks"] == len(expected)
        start, end = result.details["chunk_span"]
        assert 0 <= start <= end <= len(text)
        assert any(
            len(tok(text[start:end], add_special_tokens=False)["input_ids"]) == e - s
            for s, e in expected
        )  # the span is the text of one of the windows
    assert reranker.last_truncated == 0  # chunking cuts nothing


def test_chunk_mode_scores_each_window_like_a_short_document(tiny_cross_encoder):
    """A document's max-aggregated score equals the best score of its windows scored alone."""
    chunk = CrossEncoderReranker(
        tiny_cross_encoder, device="cpu", max_length=24, long_documents="chunk", chunk_overlap=4
    )
    plain = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=24)
    query = "boiling water"
    [result] = chunk.rerank(query, [FILLER])
    query_len = len(chunk.tokenizer(query, add_special_tokens=False)["input_ids"])
    n_tokens = len(chunk.tokenizer(FILLER, add_special_tokens=False)["input_ids"])
    windows = chunk_windows(n_tokens, 24 - 3 - query_len, 4)
    assert result.details["chunks"] == len(windows)
    start, end = result.details["chunk_span"]
    alone = plain.score(query, [FILLER[start:end]])[0]
    assert result.score == pytest.approx(alone, abs=1e-5)
