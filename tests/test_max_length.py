"""Issue 25, kind 1 (and issue 27, item 4): the length a model declares is the length it runs at.

sentence-transformers keeps a cross-encoder's ``max_length`` in the tokenizer's
``model_max_length`` (PR #3304) and a bi-encoder's in ``max_seq_length``; every backend that
truncates runs at that length by default (capped at the position limit), warns when asked for
more, and never lowers a too-large ``max_length`` silently. The reference values come from
sentence-transformers' ``CrossEncoder.predict``, not from rerankkit.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_long_documents import ANSWER, FILLER, QUERY

from conftest import TRAINED_CE, build_tiny_llama, requires_trained_ce
from rerankkit.backends._max_length import position_limit, resolve_max_length

_WORDS = " ".join([FILLER] * 3).split()
# 201 filler tokens, the answer, filler up to 373 document tokens: at the declared 256 tokens
# the model reads the answer and little else (sentence-transformers: 0.445); at 512 it reads
# all of the filler too (0.052). The old default (512) scored it 0.052.
DOC_373 = " ".join(_WORDS[:170]) + " " + ANSWER + " " + " ".join(_WORDS[170:289])

BERT = SimpleNamespace(max_position_embeddings=512, model_type="bert")


def _declaring(folder: Path, target: Path, length: int) -> Path:
    """A copy of ``folder`` whose tokenizer declares ``model_max_length=length``."""
    shutil.copytree(folder, target)
    config_path = target / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "model_max_length": length}))
    return target


@pytest.mark.slow
@requires_trained_ce
def test_default_length_is_the_declared_one_and_scores_equal_sentence_transformers(
    trained_ce_float32: Any,
) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    from rerankkit import CrossEncoderReranker

    theirs = CrossEncoder(str(TRAINED_CE))
    assert len(theirs.tokenizer(DOC_373, add_special_tokens=False)["input_ids"]) == 373
    expected = float(theirs.predict([(QUERY, DOC_373)])[0])

    ours = CrossEncoderReranker(TRAINED_CE)  # default settings, the default CPU path
    assert ours.max_length == theirs.max_length == 256
    # bf16 paths (chosen by default only on CPUs that multiply bf16 natively) round to ~1e-3
    tolerance = 1e-2 if (ours.cpu_path or "").endswith("bfloat16") else 1e-4
    assert ours.score(QUERY, [DOC_373])[0] == pytest.approx(expected, abs=tolerance)

    at_512 = float(CrossEncoder(str(TRAINED_CE), max_length=512).predict([(QUERY, DOC_373)])[0])
    assert trained_ce_float32.max_length == 512  # explicit, above the declared: a WARNING
    assert trained_ce_float32.score(QUERY, [DOC_373])[0] == pytest.approx(at_512, abs=1e-4)
    assert abs(at_512 - expected) > 0.1  # the length matters for this document


def test_too_large_max_length_is_lowered_with_a_warning_never_silently(
    tiny_cross_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rerankkit import CrossEncoderReranker

    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        reranker = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=100000)
    assert reranker.max_length == 512
    assert "max_length=100000 exceeds the model's position limit of 512 tokens" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        assert CrossEncoderReranker(tiny_cross_encoder, device="cpu").max_length == 512
    assert "max_length" not in caplog.text  # the default warns about nothing


def test_every_truncating_backend_runs_at_the_declared_length(
    tiny_cross_encoder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rerankkit import CausalLMReranker, CrossEncoderReranker, EmbeddingReranker

    folder = _declaring(tiny_cross_encoder, tmp_path / "ce-64", 64)
    assert CrossEncoderReranker(folder, device="cpu").max_length == 64
    assert CrossEncoderReranker(folder, device="cpu", backend="onnx").max_length == 64
    assert EmbeddingReranker(folder, device="cpu").max_length == 64
    # a bi-encoder's sentence-transformers max_seq_length is its declaration
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    assert EmbeddingReranker(folder, device="cpu").max_length == 32
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        assert EmbeddingReranker(folder, device="cpu", max_length=48).max_length == 48
    assert "max_length=48 is above the 32 tokens the model declares" in caplog.text

    llama = _declaring(build_tiny_llama(tmp_path / "lm"), tmp_path / "lm-300", 300)
    assert CausalLMReranker(llama, device="cpu").max_length == 300  # below the 1024 default
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        assert CausalLMReranker(llama, device="cpu", max_length=4096).max_length == 512
    assert "max_length=4096 exceeds the model's position limit of 512" in caplog.text


@pytest.mark.parametrize(
    ("declared", "wanted", "expected", "warning"),
    [
        (256, None, 256, None),
        (int(1e30), None, 512, None),  # transformers' "not declared" sentinel
        (None, None, 512, None),
        (4096, None, 512, None),  # a declaration above the position limit is capped
        (256, 128, 128, None),
        (256, 256, 256, None),
        (256, 300, 300, "above the 256 tokens the model declares"),
        (256, 100000, 512, "exceeds the model's position limit of 512"),
        (int(1e30), 100000, 512, "exceeds the model's position limit of 512"),
    ],
)
def test_the_rule(
    declared: object,
    wanted: int | None,
    expected: int,
    warning: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        length = resolve_max_length(BERT, declared=declared, wanted=wanted, owner="ce")
    assert length == expected
    assert (warning in caplog.text) if warning else not caplog.records


def test_position_limits_of_offset_models_and_configs_without_one() -> None:
    xlmr = SimpleNamespace(max_position_embeddings=514, model_type="xlm-roberta", pad_token_id=1)
    assert position_limit(xlmr) == 512  # bge-reranker's 514 embeddings read 512 tokens
    assert position_limit(SimpleNamespace(max_position_embeddings=-1)) is None
    assert resolve_max_length(None, declared=None, wanted=None, owner="x", fallback=77) == 77
    assert resolve_max_length(None, declared=None, wanted=9000, owner="x") == 9000
