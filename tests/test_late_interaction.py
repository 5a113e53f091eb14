"""LateInteractionReranker: MaxSim equal to sentence-transformers', and the embedding store.

Expected scores come from sentence-transformers' own ``MultiVectorEncoder.similarity`` on the
same checkpoint (an independent implementation path: its encode + MaxSim, not ours), on the
real offline ColBERT-style model in ../shared and on a tiny random checkpoint built here with
ColBERT's moving parts (query/document prompts, a projection, a document skip-list).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, SHARED, build_tiny_bert, requires_shared
from rerankkit import LateInteractionReranker, TokenEmbeddingStore
from rerankkit._specs import build_reranker
from rerankkit.eval._datasets import load_beir, load_trec_run

pytestmark = pytest.mark.slow
COLBERT = SHARED / "models" / "minilm-l6-colbert"
DOCS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "France is famous for its wine and cheese.",
    "The Eiffel Tower is in Paris.",
]


def build_tiny_colbert(path: Path, seed: int) -> Path:
    """A tiny random multi-vector checkpoint: BERT -> Dense 32->16 -> skip-list mask -> L2."""
    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.base.modules.dense import Dense
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    backbone = build_tiny_bert(path / "backbone", seed=seed)
    torch.manual_seed(seed)
    model = MultiVectorEncoder(
        modules=[
            Transformer(str(backbone), query_length=12, document_length=48),
            Dense(
                32,
                16,
                bias=False,
                activation_function=torch.nn.Identity(),
                module_input_name="token_embeddings",
                module_output_name="token_embeddings",
            ),
            MultiVectorMask(skiplist_words=[".", ","], skiplist_tasks="document"),
            Normalize(module_input_name="token_embeddings", module_output_name="token_embeddings"),
        ],
        prompts={"query": "query: ", "document": "passage: "},
        device="cpu",
    )
    model.save(str(path / "colbert"))
    return path / "colbert"


@pytest.fixture(scope="module")
def tiny_colbert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("tiny-colbert"), seed=3)


def st_scores(path: Path, query: str, documents: list[str]) -> list[float]:
    from sentence_transformers import MultiVectorEncoder

    model = MultiVectorEncoder(str(path), device="cpu", local_files_only=True)
    similarity = model.similarity(model.encode_query([query]), model.encode_document(documents))
    return similarity[0].tolist()


def test_tiny_checkpoint_scores_equal_sentence_transformers(tiny_colbert: Path) -> None:
    reranker = LateInteractionReranker(tiny_colbert, device="cpu")
    expected = st_scores(tiny_colbert, "capital of France", DOCS)
    assert reranker.score("capital of France", DOCS) == pytest.approx(expected, abs=1e-4)
    # the checkpoint's own parts reached the model: prompts and the 16-dim projection
    assert reranker.model.prompts["query"] == "query: "
    assert reranker.dimension == 16


@requires_shared
def test_shared_colbert_equals_sentence_transformers_on_dl19_candidates() -> None:
    dataset = load_beir(DATA / "trec-dl-2019-passage")
    run = load_trec_run(DATA / "trec-dl-2019-passage" / "runs" / "bm25-top100.trec")
    reranker = LateInteractionReranker(COLBERT, device="cpu")
    groups = []
    for qid in sorted(run)[:3]:
        top = sorted(run[qid], key=run[qid].__getitem__, reverse=True)[:20]
        groups.append((dataset.queries[qid], [dataset.corpus[d] for d in top]))
    got = reranker.score_many(groups)
    for (query, documents), scores in zip(groups, got, strict=True):
        assert scores == pytest.approx(st_scores(COLBERT, query, documents), abs=1e-4)


def test_store_encodes_each_document_once_across_queries(tiny_colbert: Path) -> None:
    reranker = LateInteractionReranker(tiny_colbert, device="cpu")
    first = reranker.score("capital of France", DOCS)
    assert reranker.store is not None
    assert reranker.store.info()[:3] == (0, 4, 4)  # 4 misses, 4 stored
    again = reranker.score("capital of France", DOCS)
    other = reranker.score("wine", DOCS[::-1])
    info = reranker.store.info()
    assert (info.hits, info.misses, info.entries) == (8, 4, 4)  # second and third: all hits
    assert again == first
    uncached = LateInteractionReranker(tiny_colbert, device="cpu", store=False)
    assert uncached.store is None
    assert other == pytest.approx(uncached.score("wine", DOCS[::-1]), abs=1e-6)


def test_store_bytes_are_tokens_times_dim_times_itemsize(tiny_colbert: Path) -> None:
    fp32 = LateInteractionReranker(tiny_colbert, device="cpu")
    fp16 = LateInteractionReranker(
        tiny_colbert, device="cpu", store=TokenEmbeddingStore(dtype="float16")
    )
    fp32.score("q", DOCS)
    fp16.score("q", DOCS)
    tokens = sum(e.shape[0] for e in fp32.encode_documents(DOCS))
    assert fp32.store is not None and fp16.store is not None
    assert fp32.store.info().bytes == tokens * 16 * 4
    assert fp16.store.info().bytes == tokens * 16 * 2
    # fp16 storage keeps the ranking and moves scores by well under 1e-2 here
    assert fp16.score("capital of France", DOCS) == pytest.approx(
        fp32.score("capital of France", DOCS), abs=1e-2
    )


def test_a_float16_store_scores_the_first_call_as_later_ones(tiny_colbert: Path) -> None:
    # the first call used to score the fresh float32 vectors and later calls the stored
    # float16 ones, so the same query and documents could rank differently the second time
    store = TokenEmbeddingStore(dtype="float16")
    reranker = LateInteractionReranker(tiny_colbert, device="cpu", store=store)
    first = reranker.score("capital of France", DOCS)
    assert store.info().hits == 0
    assert reranker.score("capital of France", DOCS) == first
    assert store.info().hits == len(DOCS)
    assert all(e.dtype == np.float16 for e in reranker.encode_documents(["never seen"]))


def test_memory_bound_evicts_least_recently_used() -> None:
    store = TokenEmbeddingStore(max_bytes=3 * 64)  # three [4, 4] float32 arrays
    arrays = [np.full((4, 4), i, dtype=np.float32) for i in range(4)]
    store.put_many("m", ["a", "b", "c"], arrays[:3])
    store.get_many("m", ["a"])  # "a" is now the most recent
    store.put_many("m", ["d"], arrays[3:])
    present = [e is not None for e in store.get_many("m", ["a", "b", "c", "d"])]
    assert present == [True, False, True, True]
    assert store.info().bytes == 3 * 64


def test_disk_store_survives_a_new_process_and_separates_models(
    tiny_colbert: Path, tmp_path: Path
) -> None:
    first = LateInteractionReranker(
        tiny_colbert, device="cpu", store=TokenEmbeddingStore(directory=tmp_path)
    )
    expected = first.score("capital of France", DOCS)
    # a pickled copy (as Ray/multiprocessing send it) reopens the same folder, starts empty in
    # memory and reads every document from disk
    store = pickle.loads(pickle.dumps(first.store))
    assert store.info().disk_entries == 4 and store.info().entries == 0
    second = LateInteractionReranker(tiny_colbert, device="cpu", store=store)
    assert second.score("capital of France", DOCS) == pytest.approx(expected, abs=1e-6)
    assert store.info().hits == 4 and store.info().misses == 0
    # the store is keyed by the weights: another model never reads these vectors
    other = build_tiny_colbert(tmp_path / "other", seed=4)
    third = LateInteractionReranker(other, device="cpu", store=store)
    third.score("capital of France", DOCS)
    assert store.info().misses == 4  # nothing of the first model was reused


def test_spec_string_and_eval_path(tiny_colbert: Path) -> None:
    reranker = build_reranker(f"colbert:{tiny_colbert}?batch_size=2")
    assert isinstance(reranker, LateInteractionReranker)
    assert reranker.batch_size == 2
    assert reranker.pointwise
    ranked = reranker.rerank("capital of France", DOCS, top_n=2)
    assert [r.index for r in ranked] == list(
        np.argsort(-np.asarray(st_scores(tiny_colbert, "capital of France", DOCS)))[:2]
    )


def test_length_normalize_divides_by_query_tokens(tiny_colbert: Path) -> None:
    plain = LateInteractionReranker(tiny_colbert, device="cpu")
    normalized = LateInteractionReranker(tiny_colbert, device="cpu", length_normalize=True)
    tokens = plain.encode_queries(["capital of France"])[0].shape[0]
    assert normalized.score("capital of France", DOCS) == pytest.approx(
        [s / tokens for s in plain.score("capital of France", DOCS)], abs=1e-5
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"store": "memory"}, TypeError, "store"),
    ],
)
def test_bad_arguments_name_the_argument(
    tiny_colbert: Path, kwargs: dict, error: type, argument: str
) -> None:
    with pytest.raises(error, match=argument):
        LateInteractionReranker(tiny_colbert, **kwargs)


def test_store_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="dtype"):
        TokenEmbeddingStore(dtype="int8")
    with pytest.raises(ValueError, match="max_bytes"):
        TokenEmbeddingStore(max_bytes=0)
    with pytest.raises(TypeError, match="directory must be a str or path, got int"):
        TokenEmbeddingStore(directory=123)  # type: ignore[arg-type]


def test_disk_entry_larger_than_the_memory_bound_is_read_from_disk(tmp_path: Path) -> None:
    # put_many keeps such an array on disk only; reading it back must not try to hold it in
    # memory either (cachetools raised "value too large")
    store = TokenEmbeddingStore(max_bytes=32, directory=tmp_path)
    array = np.arange(16, dtype=np.float32).reshape(4, 4)  # 64 bytes
    store.put_many("m", ["big"], [array])
    (found,) = store.get_many("m", ["big"])
    assert found is not None and np.array_equal(found, array)
    assert store.info().entries == 0 and store.info().disk_entries == 1


def test_entries_from_a_store_of_another_dtype_come_back_in_this_ones(tmp_path: Path) -> None:
    array = np.full((2, 3), 1 / 3, dtype=np.float32)
    TokenEmbeddingStore(dtype="float16", directory=tmp_path).put_many("m", ["x"], [array])
    (found,) = TokenEmbeddingStore(dtype="float32", directory=tmp_path).get_many("m", ["x"])
    assert found is not None and found.dtype == np.float32 and not found.flags.writeable
    assert np.array_equal(found, array.astype(np.float16).astype(np.float32))
