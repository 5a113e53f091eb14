"""Issue 11, model-side fault kinds: each test keeps the right value of one replayed bug report.

3. low precision ties distinct documents; 4. decoder-style classifiers without a pad token fail
at batch size > 1; 5. a model that is not a reranker gets a random head silently; 7. chunk
windows tied to ``max_length`` and truncation visible only at DEBUG; 10. an unavailable
``device`` surfaces as a raw torch AssertionError.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import (
    TINY,
    TRAINED_CE,
    DL19Inputs,
    _minilm_tokenizer_dir,
    build_tiny_bert,
    build_tiny_llama,
    requires_shared,
    requires_trained_ce,
)
from rerankkit import CausalLMReranker, CrossEncoderReranker, EmbeddingReranker, result_metadata
from rerankkit._specs import build_reranker
from rerankkit.backends._devices import device_problem
from rerankkit.errors import ModelLoadError

QUERY = "what is the boiling point of water"
DOCS = [
    "water boils at one hundred degrees at sea level",
    "the cat sat on the mat",
    "paris is the capital of france",
    "what is the point of water",
    "boils",
    "the boiling point of water is lower on a mountain",
]

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _ties(fp32: np.ndarray, low: np.ndarray, margin: float = 1e-3) -> int:
    """Pairs that float32 tells apart by more than ``margin`` and ``low`` scores equal."""
    apart = np.abs(fp32[:, None] - fp32[None, :]) > margin
    equal = low[:, None] == low[None, :]
    return int(np.triu(apart & equal, k=1).sum())


# --------------------------------------------------------------------------- 3: low precision


@pytest.mark.slow
@requires_shared
@requires_trained_ce
def test_bf16_ties_no_documents_that_fp32_tells_apart_on_dl19(
    dl19: DL19Inputs, dl19_ce_scores: dict[str, dict[str, float]]
) -> None:
    low = CrossEncoderReranker(TRAINED_CE, device="cpu", dtype="bfloat16", max_length=512)
    rounded_ties = ties = 0
    for qid, ids in dl19.first_judged(4, 100):  # the first four
        # The exact float32 sigmoid scores (max_length 512), computed once per session, and
        # the logits they come from (float64 arithmetic: far finer than bfloat16's steps).
        fp32 = np.asarray([dl19_ce_scores[qid][d] for d in ids], dtype=np.float64)
        with np.errstate(divide="ignore"):  # a score of exactly 1.0 is an infinite logit
            logits = np.log(fp32) - np.log1p(-fp32)
        # What a bf16 head outputs: the same logits rounded to bfloat16 before the sigmoid.
        as_bf16 = torch.tensor(logits, dtype=torch.float32).bfloat16().double().numpy()
        rounded_ties += _ties(fp32, 1.0 / (1.0 + np.exp(-as_bf16)))
        ties += _ties(fp32, np.asarray(low.score(*dl19.texts(qid, ids))))
    assert rounded_ties > 0  # these candidates do contain pairs a bf16 output would merge
    assert ties == 0


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_classification_head_runs_in_float32_under_low_precision(
    tiny_cross_encoder: Path, dtype: str
) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder, device="cpu", dtype=dtype)
    model = reranker.model
    assert model.bert.encoder.layer[0].output.dense.weight.dtype == getattr(torch, dtype)
    assert model.bert.pooler.dense.weight.dtype == torch.float32
    assert model.classifier.weight.dtype == torch.float32
    inputs = reranker.tokenizer([QUERY], [DOCS[0]], return_tensors="pt")
    with torch.inference_mode():
        assert model(**inputs).logits.dtype == torch.float32
    scores = reranker.score(QUERY, DOCS)
    assert len(set(scores)) == len(DOCS)


def _large_answer_logits(model: Any, tokenizer: Any) -> None:
    """Like a real LLM's: large "yes"/"no" logits (~20, where bfloat16 steps by 1/8) whose
    difference, the score, is moderate and varies between documents."""
    yes, no = (tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in ("yes", "no"))
    common = torch.randn(model.config.hidden_size) * 4.0
    for token in (yes, no):
        model.lm_head.weight[token] = common + torch.randn(model.config.hidden_size) * 0.3


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llama")
    return build_tiny_llama(path, edit_weights=_large_answer_logits)


def test_causal_lm_yes_no_logits_run_in_float32_under_bf16(tiny_lm: Path) -> None:
    docs = [f"{a} {b} water point {c}" for a in DOCS[:5] for b in DOCS[:4] for c in range(3)]
    exact = CausalLMReranker(tiny_lm, device="cpu", dtype="float32", batch_size=16)
    low = CausalLMReranker(tiny_lm, device="cpu", dtype="bfloat16", batch_size=16)
    rows = exact.build_inputs(QUERY, docs)
    yes, no = exact._yes_id, exact._no_id
    logits = []
    with torch.inference_mode():  # an independent forward, one prompt at a time
        for row in rows:
            out = exact.model(input_ids=torch.tensor([row])).logits[0, -1]
            logits.append([float(out[no]), float(out[yes])])
    pair = np.asarray(logits)
    fp32 = 1.0 / (1.0 + np.exp(pair[:, 0] - pair[:, 1]))  # softmax over (no, yes)
    np.testing.assert_allclose(exact.score(QUERY, docs), fp32, atol=1e-5)
    rounded = torch.tensor(pair, dtype=torch.float32).bfloat16().double().numpy()
    assert _ties(fp32, 1.0 / (1.0 + np.exp(rounded[:, 0] - rounded[:, 1]))) > 0
    assert _ties(fp32, np.asarray(low.score(QUERY, docs))) == 0


# --------------------------------------------------------------------------- 4: pad token


def _tiny_decoder_classifier(path: Path, family: str, padding_side: str) -> Path:
    """A Qwen2/Llama sequence classifier whose config and tokenizer have no pad token (only
    an end-of-sequence token), the way such rerankers are often published."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<unk>", "<s>", "</s>", *sorted({w for text in [QUERY, *DOCS] for w in text.split()})]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.padding_side = padding_side
    assert tokenizer.pad_token is None
    config_class, model_class = {
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForSequenceClassification),
        "llama": (transformers.LlamaConfig, transformers.LlamaForSequenceClassification),
    }[family]
    config = config_class(
        vocab_size=len(words),
        num_key_value_heads=2,
        num_labels=1,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        **TINY,
    )
    torch.manual_seed(0)
    model = model_class(config).eval()
    with torch.no_grad():
        model.score.weight.normal_(0.0, 2.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize(("family", "side"), [("qwen2", "right"), ("llama", "left")])
def test_decoder_classifier_without_pad_token_batches_like_single_documents(
    tmp_path: Path, family: str, side: str
) -> None:
    path = _tiny_decoder_classifier(tmp_path, family, side)
    raw = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    assert raw.config.pad_token_id is None
    with pytest.raises(ValueError, match="padding token"):  # the reported failure
        raw(input_ids=torch.tensor([[3, 4, 5], [6, 7, 8]]))

    batched = CrossEncoderReranker(path, device="cpu", batch_size=8, activation="none")
    assert batched.model.config.pad_token_id == 2 == batched.tokenizer.pad_token_id  # the eos
    single = CrossEncoderReranker(path, device="cpu", batch_size=1, activation="none")
    expected = []
    with torch.inference_mode():  # each pair alone, no padding, through plain transformers
        for doc in DOCS:
            ids = batched.tokenizer(QUERY, doc)["input_ids"]
            expected.append(float(raw(input_ids=torch.tensor([ids])).logits[0, 0]))
    np.testing.assert_allclose(single.score(QUERY, DOCS), expected, atol=1e-5)
    np.testing.assert_allclose(batched.score(QUERY, DOCS), expected, atol=1e-5)


# --------------------------------------------------------------------------- 5: untrained head


@pytest.fixture(scope="module")
def plain_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BertModel saved without a classification head (a base model / bi-encoder)."""
    return build_tiny_bert(tmp_path_factory.mktemp("plain-bert"), head=False)


def test_a_model_without_classifier_weights_is_refused_naming_them(plain_bert: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        CrossEncoderReranker(plain_bert, device="cpu")
    message = str(caught.value)
    assert str(plain_bert) in message
    assert "classifier.weight" in message and "classifier.bias" in message
    assert "allow_untrained_head=True" in message
    with pytest.raises(ModelLoadError, match=r"cross-encoder:.*classifier\.weight"):
        build_reranker(f"cross-encoder:{plain_bert}")


def test_allow_untrained_head_loads_it_with_a_warning(
    plain_bert: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        reranker = CrossEncoderReranker(plain_bert, device="cpu", allow_untrained_head=True)
    assert "newly initialised" in caplog.text and "classifier.weight" in caplog.text
    assert len(reranker.score(QUERY, DOCS)) == len(DOCS)
    spec = build_reranker(f"cross-encoder:{plain_bert}?allow_untrained_head=true")
    assert isinstance(spec, CrossEncoderReranker) and spec.allow_untrained_head is True
    with pytest.raises(TypeError, match="allow_untrained_head"):
        CrossEncoderReranker(plain_bert, device="cpu", allow_untrained_head="yes")


@pytest.mark.slow
def test_the_packaged_bi_encoder_is_not_a_cross_encoder() -> None:
    path = str(_minilm_tokenizer_dir())  # all-MiniLM-L6-v2: a sentence-transformers bi-encoder
    with pytest.raises(ModelLoadError, match=r"not a trained cross-encoder.*classifier\.weight"):
        CrossEncoderReranker(path, device="cpu")
    with pytest.raises(ModelLoadError, match=r"classifier\.weight"):
        CrossEncoderReranker(path, backend="onnx")  # refused before any export


def test_a_base_model_is_not_a_causal_lm(tmp_path: Path) -> None:
    path = build_tiny_llama(tmp_path, causal=False)
    with pytest.raises(ModelLoadError, match=r"not a trained causal LM.*lm_head\.weight"):
        CausalLMReranker(path, device="cpu")


def test_a_trained_head_loads_silently(
    tiny_cross_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        CrossEncoderReranker(tiny_cross_encoder, device="cpu")
    assert "newly initialised" not in caplog.text


# --------------------------------------------------------------------------- 7: truncation


def test_truncation_is_reported_once_at_warning_with_counts_and_flagged(
    tiny_cross_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=16)
    long_doc = " ".join(DOCS)  # far more than 16 tokens
    docs = [DOCS[1], long_doc, long_doc, DOCS[4]]
    with caplog.at_level(logging.DEBUG, logger="rerankkit"):
        first = reranker.rerank(QUERY, docs)
        second = reranker.rerank(QUERY, docs)
    notices = [r for r in caplog.records if r.name == "rerankkit.backends._truncation"]
    warnings = [r for r in notices if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 4 documents" in warnings[0].getMessage()
    assert "max_length=16" in warnings[0].getMessage()
    assert any(r.levelno == logging.DEBUG and "truncated 2 of 4" in r.getMessage() for r in notices)
    for results in (first, second):
        flags = {r.index: bool(r.details.get("truncated")) for r in results}
        assert flags == {0: False, 1: True, 2: True, 3: False}
        assert all(result_metadata(r).get("truncated") is True for r in results if flags[r.index])
    assert reranker.last_truncated == 2


def test_embedding_and_causal_lm_report_truncation_once(
    tiny_lm: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedding = EmbeddingReranker(_minilm_tokenizer_dir(), device="cpu", max_length=12)
    causal = CausalLMReranker(tiny_lm, device="cpu", max_length=400)
    long_doc = " ".join(DOCS * 20)  # ~700 tokens
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        for reranker in (embedding, causal, embedding, causal):
            results = reranker.rerank(QUERY, [DOCS[4], long_doc])
            assert {r.index: bool(r.details.get("truncated")) for r in results} == {
                0: False,
                1: True,
            }
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "rerankkit.backends._truncation"
    ]
    assert len([m for m in messages if m.startswith("EmbeddingReranker")]) == 1
    assert len([m for m in messages if m.startswith("CausalLMReranker")]) == 1


def test_chunk_size_is_independent_of_max_length(tiny_cross_encoder: Path) -> None:
    from rerankkit.backends._pairs import chunk_windows

    long_doc = " ".join(DOCS * 4)
    sizes = {}
    for max_length in (128, 512):
        reranker = CrossEncoderReranker(
            tiny_cross_encoder,
            device="cpu",
            max_length=max_length,
            long_documents="chunk",
            chunk_size=20,
            chunk_overlap=5,
        )
        [result] = reranker.rerank(QUERY, [long_doc])
        sizes[max_length] = result.details["chunks"]
    n_tokens = len(reranker.tokenizer(long_doc, add_special_tokens=False)["input_ids"])
    assert sizes == {
        128: len(chunk_windows(n_tokens, 20, 5)),
        512: len(chunk_windows(n_tokens, 20, 5)),
    }
    with pytest.raises(ValueError, match="chunk_size"):
        CrossEncoderReranker(tiny_cross_encoder, device="cpu", chunk_size=0)


# --------------------------------------------------------------------------- 10: devices


@pytest.mark.parametrize(
    ("requested", "cuda_count", "built", "mps", "expected"),
    [
        ("cpu", 0, False, False, None),
        ("cuda", 1, True, False, None),
        ("cuda:1", 2, True, False, None),
        ("mps", 0, False, True, None),
        (
            "cuda",
            0,
            False,
            False,
            "device='cuda' is not available: this torch build (2.9.0+cpu) has no CUDA support; "
            "available: cpu",
        ),
        (
            "cuda:0",
            0,
            True,
            True,
            "device='cuda:0' is not available: torch has CUDA support but sees no GPU (driver, "
            "CUDA_VISIBLE_DEVICES?); available: cpu, mps",
        ),
        (
            "cuda:3",
            2,
            True,
            False,
            "device='cuda:3' is not available: there are 2 CUDA devices (cuda:0 to cuda:1); "
            "available: cpu, cuda:0, cuda:1",
        ),
        (
            "mps",
            0,
            False,
            False,
            "device='mps' is not available: Apple MPS is not available on this machine; "
            "available: cpu",
        ),
    ],
)
def test_device_problem_names_device_and_what_is_available(
    requested: str, cuda_count: int, built: bool, mps: bool, expected: str | None
) -> None:
    got = device_problem(
        requested, cuda_count=cuda_count, cuda_built=built, mps=mps, torch_version="2.9.0+cpu"
    )
    assert got == expected


def _unavailable_devices() -> list[str]:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = [f"cuda:{count + 3}"]
    if count == 0:
        devices.append("cuda")
    if not torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def test_every_backend_names_an_unavailable_device(tiny_cross_encoder: Path, tiny_lm: Path) -> None:
    from rerankkit.backends._late_interaction import LateInteractionReranker

    builders = {
        "cross-encoder": lambda d: CrossEncoderReranker(tiny_cross_encoder, device=d),
        "embedding": lambda d: EmbeddingReranker(_minilm_tokenizer_dir(), device=d),
        "causal LM": lambda d: CausalLMReranker(tiny_lm, device=d),
        "late interaction": lambda d: LateInteractionReranker(tiny_cross_encoder, device=d),
    }
    for device in _unavailable_devices():
        for name, build in builders.items():
            with pytest.raises(
                ValueError, match=rf"device='{device}' is not available.*available: cpu"
            ) as caught:
                build(device)
            assert not isinstance(caught.value, AssertionError), name
    with pytest.raises(ValueError, match="device='gpu' is not a torch device string"):
        CrossEncoderReranker(tiny_cross_encoder, device="gpu")
    spec = f"cross-encoder:{tiny_cross_encoder}?device=cuda:{torch.cuda.device_count() + 3}"
    with pytest.raises(ValueError, match=r"reranker spec .*device='cuda:\d+' is not available"):
        build_reranker(spec)
