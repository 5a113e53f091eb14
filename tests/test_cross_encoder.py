"""CrossEncoderReranker: parity with sentence-transformers, activations, loading, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TRAINED_CE, build_tiny_bert, requires_trained_ce
from rerankkit import CrossEncoderReranker, MissingExtraError
from rerankkit._result import LOWEST_SCORE
from rerankkit.backends._hf import resolve_device, resolve_dtype

QUERY = "how do tides depend on the moon"
FILLER = (
    "Tides are the rise and fall of sea levels caused by the gravitational pull of the moon "
    "and the sun, combined with the rotation of the earth. "
)
DOCUMENTS = [
    "The moon's gravity pulls the oceans and makes the tides.",
    FILLER * 40,  # several hundred tokens: truncated at any max_length used here
    "Bread rises because yeast produces carbon dioxide.",
    "tide " * 300,
    "",
    "Spring tides happen when the sun and moon line up; neap tides when they are at right angles.",
]


def _st_predict(
    path: Path, max_length: int, documents: list[str], activation_fn: object = None
) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(
        str(path), max_length=max_length, device="cpu", activation_fn=activation_fn
    )
    return np.asarray(model.predict([(QUERY, d) for d in documents], batch_size=4))


def _assert_parity(scores: list[float], expected: np.ndarray, atol: float = 1e-4) -> None:
    """Our scores equal ``expected`` for the documents the model reads; an empty document is
    never sent to it (issue 11) and scores ``LOWEST_SCORE``."""
    read = np.array([bool(d.strip()) for d in DOCUMENTS])
    ours = np.asarray(scores, dtype=np.float64)
    assert (ours[~read] == LOWEST_SCORE).all()
    np.testing.assert_allclose(ours[read], np.asarray(expected)[read], atol=atol, rtol=0)


def _softmax_positive(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted[:, 1] / shifted.sum(axis=1)


@pytest.mark.parametrize("max_length", [64, 512])
def test_one_logit_parity_with_sentence_transformers(tiny_cross_encoder, max_length):
    ours = CrossEncoderReranker(
        tiny_cross_encoder, device="cpu", max_length=max_length, batch_size=3
    )
    expected = _st_predict(tiny_cross_encoder, max_length, DOCUMENTS)
    _assert_parity(ours.score(QUERY, DOCUMENTS), expected)
    assert ours.last_truncated == (2 if max_length == 64 else 1)
    # the seeded head spreads the scores, so parity means something
    assert len(set(np.round(expected, 4))) > 3


def test_two_logit_parity_positive_probability_and_logit_difference(tiny_two_label_cross_encoder):
    path = tiny_two_label_cross_encoder
    logits = _st_predict(path, 64, DOCUMENTS)  # ST returns both logits for 2-label models
    assert logits.shape == (len(DOCUMENTS), 2)
    prob = CrossEncoderReranker(path, device="cpu", max_length=64).score(QUERY, DOCUMENTS)
    _assert_parity(prob, _softmax_positive(logits))
    raw = CrossEncoderReranker(path, device="cpu", max_length=64, activation="none")
    _assert_parity(raw.score(QUERY, DOCUMENTS), logits[:, 1] - logits[:, 0])


@pytest.mark.slow
@requires_trained_ce
def test_trained_cross_encoder_parity_with_truncation():
    ours = CrossEncoderReranker(TRAINED_CE, device="cpu", dtype="float32", max_length=256)
    expected = _st_predict(TRAINED_CE, 256, DOCUMENTS)
    scores = ours.score(QUERY, DOCUMENTS)
    _assert_parity(scores, expected)
    assert ours.last_truncated == 2
    assert ours.activation == "sigmoid"  # read from config_sentence_transformers.json
    # a trained model: the on-topic passages beat the bread one
    assert scores[0] > scores[2] and scores[5] > scores[2]


def test_activation_read_from_config_sentence_transformers_json(tmp_path, tiny_cross_encoder):
    import torch

    path = build_tiny_bert(
        tmp_path / "identity",
        sentence_transformers_activation="torch.nn.modules.linear.Identity",
    )
    auto = CrossEncoderReranker(path, device="cpu", max_length=64)
    assert auto.activation == "none"
    # ST reads this file only for folders it saved itself (with modules.json), so name it.
    logits = _st_predict(path, 64, DOCUMENTS[:3], activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(auto.score(QUERY, DOCUMENTS[:3]), logits, atol=1e-4, rtol=0)
    sigmoid = CrossEncoderReranker(path, device="cpu", max_length=64, activation="sigmoid")
    assert not np.allclose(sigmoid.score(QUERY, DOCUMENTS[:3]), logits, atol=1e-2)  # not sigmoid


def test_activation_read_from_legacy_config_json(tmp_path, tiny_cross_encoder):
    path = tmp_path / "legacy"
    shutil.copytree(tiny_cross_encoder, path)
    config = json.loads((path / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.Tanh"}
    (path / "config.json").write_text(json.dumps(config))
    ours = CrossEncoderReranker(path, device="cpu", max_length=64)
    assert ours.activation == "tanh"
    np.testing.assert_allclose(
        ours.score(QUERY, DOCUMENTS[:3]), _st_predict(path, 64, DOCUMENTS[:3]), atol=1e-4, rtol=0
    )


def test_no_recorded_activation_means_sigmoid_and_explicit_choice_wins(tiny_cross_encoder):
    auto = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64)
    raw = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64, activation="none")
    assert auto.activation == "sigmoid" and raw.activation == "none"
    read = [d for d in DOCUMENTS if d.strip()]  # the empty one never reaches the model
    logits = np.asarray(raw.score(QUERY, read), dtype=np.float64)
    np.testing.assert_allclose(auto.score(QUERY, read), 1 / (1 + np.exp(-logits)), atol=1e-6)


def test_order_restoration_and_batch_size_do_not_change_scores(tiny_cross_encoder):
    one = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64, batch_size=1)
    many = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64, batch_size=32)
    base = one.score(QUERY, DOCUMENTS)
    np.testing.assert_allclose(many.score(QUERY, DOCUMENTS), base, atol=1e-5)
    order = [3, 0, 5, 1, 4, 2]
    shuffled = many.score(QUERY, [DOCUMENTS[i] for i in order])
    np.testing.assert_allclose(shuffled, [base[i] for i in order], atol=1e-5)
    ranked = many.rerank(QUERY, DOCUMENTS, top_n=2)
    assert [r.index for r in ranked] == list(np.argsort(-np.asarray(base), kind="stable")[:2])
    assert all(isinstance(r.score, float) for r in ranked)


def test_max_length_is_capped_at_the_model_position_limit(tiny_cross_encoder):
    assert CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=4096).max_length == 512
    assert CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=None).max_length == 512


def test_bfloat16_weights_give_float32_scores_close_to_fp32(tiny_cross_encoder):
    import torch

    fp32 = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64)
    bf16 = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64, dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert bf16.dtype == torch.bfloat16 and fp32.dtype == torch.float32
    scores = bf16.score(QUERY, DOCUMENTS)
    assert all(type(s) is float for s in scores)
    np.testing.assert_allclose(scores, fp32.score(QUERY, DOCUMENTS), atol=0.05)


@pytest.mark.parametrize(
    ("requested", "cuda", "mps", "expected"),
    [
        (None, True, True, "cuda"),
        ("auto", False, True, "mps"),
        (None, False, False, "cpu"),
        ("cpu", True, True, "cpu"),
        ("cuda:1", True, False, "cuda:1"),
    ],
)
def test_resolve_device(requested, cuda, mps, expected):
    assert resolve_device(requested, cuda=cuda, mps=mps) == expected


def test_resolve_dtype():
    import torch

    assert resolve_dtype(None, "cpu", bf16=True) == "float32"
    assert resolve_dtype("auto", "cuda", bf16=True) == "bfloat16"
    assert resolve_dtype("auto", "cuda:0", bf16=False) == "float16"
    assert resolve_dtype(None, "mps", bf16=False) == "float16"
    assert resolve_dtype("bf16", "cpu", bf16=False) == "bfloat16"
    assert resolve_dtype(torch.float16, "cpu", bf16=False) == "float16"
    assert resolve_dtype("float32", "cuda", bf16=True) == "float32"
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("int8", "cpu", bf16=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_length": 3}, "max_length"),
        ({"activation": "softmax"}, "activation"),
        ({"long_documents": "split"}, "long_documents"),
        ({"chunk_overlap": -1}, "chunk_overlap"),
        ({"aggregate": "median"}, "aggregate"),
    ],
)
def test_bad_options_name_the_argument(tiny_cross_encoder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossEncoderReranker(tiny_cross_encoder, **kwargs)


def test_more_than_two_labels_is_refused(tmp_path):
    path = build_tiny_bert(tmp_path / "three", num_labels=3)
    with pytest.raises(ValueError, match="3 output labels"):
        CrossEncoderReranker(path, device="cpu")


def _run_python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -c code args`` in a fresh interpreter, its output captured as text."""
    command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_unknown_hub_id_fails_fast_and_names_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE (set for the suite): the failure needs no network at all, so there is no
    hub retry to wait for (huggingface_hub backs off for ~30 s on an unreachable host)."""
    import socket

    attempts: list[str] = []

    def refuse(*args: object) -> None:
        attempts.append(repr(args))
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(OSError, match="rerankkit-test/no-such-cross-encoder") as error:
        CrossEncoderReranker("rerankkit-test/no-such-cross-encoder")
    assert attempts == []  # no name lookup, no connection: nothing to wait for
    assert "HF_HUB_OFFLINE" in str(error.value)


# Counts what makes a failure slow instead of timing it: connections and sleeps (back-off).
_UNREACHABLE_HUB = """
import json, socket, time
connects, sleeps = [], []
real_connect, real_sleep = socket.socket.connect, time.sleep
def connect(self, address):
    connects.append(list(address))
    return real_connect(self, address)
def sleep(seconds):
    sleeps.append(seconds)
    real_sleep(seconds)
socket.socket.connect, time.sleep = connect, sleep
from rerankkit import CrossEncoderReranker
try:
    CrossEncoderReranker("rerankkit-test/no-such-cross-encoder")
except OSError as error:
    print(json.dumps({"connects": connects, "sleeps": sleeps, "error": str(error)}))
"""


def test_unreachable_hub_fails_fast_without_offline_mode(tmp_path):
    """No HF_HUB_OFFLINE and a hub that refuses connections: one probe, not ~30 s of retries."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}
    }
    env |= {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path)}  # port 9: refused
    out = _run_python(_UNREACHABLE_HUB, env=env)
    assert out.stdout.strip(), out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    message = result["error"]
    assert "rerankkit-test/no-such-cross-encoder" in message and "unreachable" in message, (
        out.stderr
    )
    # rerankkit's one probe of the endpoint (and at most one request huggingface_hub makes on
    # its own), each refused at once; no retry and no back-off before giving up.
    assert result["connects"] in ([["127.0.0.1", 9]], [["127.0.0.1", 9]] * 2)
    assert result["sleeps"] == []


def test_empty_documents_and_bad_input_use_the_shared_semantics(tiny_cross_encoder):
    reranker = CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=64)
    assert reranker.rerank(QUERY, []) == []
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        reranker.rerank(QUERY, ["ok", None])  # type: ignore[list-item]


_BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from rerankkit import CrossEncoderReranker, MissingExtraError
try:
    CrossEncoderReranker(sys.argv[1])
except MissingExtraError as error:
    print("MISSING:", error)
"""


def test_missing_torch_names_the_extra(tiny_cross_encoder):
    out = _run_python(_BLOCK_TORCH, str(tiny_cross_encoder))
    assert 'MISSING: torch is required for this feature: pip install "rerankkit[transformers]"' in (
        out.stdout
    ), out.stderr
    assert issubclass(MissingExtraError, ImportError)
