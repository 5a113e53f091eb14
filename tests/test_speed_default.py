"""The default CPU path: the rule that orders candidates, the fidelity probe, its cached verdicts,
the fallback when a fast path fails, and the default's ranking fidelity on the trained model."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import TRAINED_CE, DL19Inputs, requires_shared, requires_trained_ce
from rerankkit.backends._fast_path import (
    PROBE_MAX_ERROR,
    ProbeVerdict,
    constructor_path_order,
    cpu_path_order,
    probe_error,
    probe_groups,
)

ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "amx_bf16", "amx_int8", "avx512_vnni"})
CASCADE_LAKE = frozenset({"avx2", "avx512f", "avx512_vnni"})
HASWELL = frozenset({"avx2", "fma"})
OLD = frozenset({"sse4_2"})
OV_EXACT = ("openvino-float32", "onnx-float32", "torch-float32")


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("flags", "onnx", "openvino", "expected"),
    [
        (ZEN4, True, True, ("openvino-bfloat16", *OV_EXACT)),
        (SAPPHIRE_RAPIDS, True, True, ("openvino-bfloat16", *OV_EXACT)),
        (CASCADE_LAKE, True, True, OV_EXACT),
        (HASWELL, True, True, OV_EXACT),
        (ZEN4, True, False, ("torch-bfloat16", "onnx-int8", "onnx-float32", "torch-float32")),
        (CASCADE_LAKE, True, False, ("onnx-int8", "onnx-float32", "torch-float32")),
        (HASWELL, True, False, ("onnx-int8", "onnx-float32", "torch-float32")),
        (OLD, True, False, ("onnx-float32", "torch-float32")),
        (ZEN4, False, False, ("torch-bfloat16", "torch-float32")),
        (CASCADE_LAKE, False, True, ("torch-float32",)),  # OpenVINO reads the ONNX export
    ],
)
def test_candidates_follow_the_cpu_flags_and_runtimes(
    flags: frozenset[str], onnx: bool, openvino: bool, expected: tuple
) -> None:
    assert cpu_path_order(flags, onnx=onnx, openvino=openvino) == expected


AUTO = ("openvino-bfloat16", *OV_EXACT)


@pytest.mark.parametrize(
    ("backend", "dtype", "quantize", "device", "expected"),
    [
        ("auto", None, None, "cpu", AUTO),
        ("auto", "auto", None, "cpu", AUTO),
        ("auto", "float32", None, "cpu", ("torch-float32",)),  # exact: one argument away
        ("torch", None, None, "cpu", ("torch-bfloat16", "torch-float32")),
        ("onnx", None, None, "cpu", ("onnx-int8", "onnx-float32")),
        ("openvino", None, None, "cpu", ("openvino-bfloat16", "openvino-float32")),
        ("openvino", "float32", None, "cpu", ("openvino-float32",)),
        ("onnx", "float32", None, "cpu", None),  # explicit: the constructor's own branch
        ("auto", "bfloat16", None, "cpu", None),
        ("onnx", None, "int8", "cpu", None),
        ("auto", None, None, "cuda:0", None),  # GPUs keep their bf16/fp16 rule
    ],
)
def test_constructor_options_map_to_candidates(
    backend: str, dtype: str | None, quantize: str | None, device: str, expected: tuple | None
) -> None:
    got = constructor_path_order(backend, dtype, quantize, device, ZEN4, onnx=True, openvino=True)
    assert got == expected


def test_exact_keeps_only_exact_paths_and_unknown_families_keep_torch() -> None:
    def order(backend: str, **kwargs: object) -> tuple | None:
        options = {"onnx": True, "openvino": True, **kwargs}
        return constructor_path_order(backend, None, None, "cpu", ZEN4, **options)  # type: ignore[arg-type]

    assert order("auto", exact=True) == OV_EXACT
    assert order("auto", exact=True, openvino=False) == ("onnx-float32", "torch-float32")
    assert order("onnx", exact=True) == ("onnx-float32",)
    assert order("openvino", exact=True) == ("openvino-float32",)
    assert order("torch", exact=True) == ("torch-float32",)
    assert order("auto", convertible=False) == ("torch-bfloat16", "torch-float32")
    with pytest.raises(ValueError, match="exact"):
        constructor_path_order(
            "auto", "bfloat16", None, "cpu", ZEN4, onnx=True, openvino=True, exact=True
        )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({"device": "cuda:0"}, "device"), ({"dtype": "float16"}, "dtype")],
)
def test_openvino_backend_refuses_what_it_cannot_run(kwargs: dict, argument: str) -> None:
    options = {"dtype": None, "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=argument):
        constructor_path_order(
            "openvino", options["dtype"], None, options["device"], ZEN4, onnx=True, openvino=True
        )


# --------------------------------------------------------------------------- the probe measure


def test_probe_error_is_the_mean_relative_rms_per_group() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=12)
    candidate = reference + rng.normal(scale=0.1, size=12)
    sizes = [5, 7]
    expected = np.mean(
        [
            np.sqrt(np.mean((candidate[:5] - reference[:5]) ** 2)) / np.std(reference[:5]),
            np.sqrt(np.mean((candidate[5:] - reference[5:]) ** 2)) / np.std(reference[5:]),
        ]
    )
    got = probe_error(reference.tolist(), candidate.tolist(), sizes)
    assert got == pytest.approx(expected, abs=1e-6)
    # Scale-free: multiplying every logit by 10 does not change the error.
    assert probe_error((10 * reference).tolist(), (10 * candidate).tolist(), sizes) == (
        pytest.approx(got, abs=1e-6)
    )
    assert probe_error([1.0, 2.0], [1.0, 2.0], [2]) == 0.0
    assert probe_error([1.0, 2.0], [math.nan, 2.0], [2]) == math.inf
    with pytest.raises(ValueError, match="probe sizes"):
        probe_error([1.0, 2.0], [1.0], [2])


def test_verdicts_round_trip_through_json_and_a_damaged_one_is_ignored(tmp_path: Path) -> None:
    from rerankkit.backends._cpu_paths import VERDICTS_FILE, read_verdicts

    verdict = ProbeVerdict.judge("onnx-int8", math.nan, pairs=60)
    assert not verdict.passed and verdict.error == math.inf
    data = json.loads(verdict.model_dump_json())  # JSON-safe: inf is written as null
    assert data["error"] is None
    assert ProbeVerdict.model_validate(data) == verdict
    assert ProbeVerdict.judge("torch-bfloat16", 0.01, pairs=60).passed
    assert not ProbeVerdict.judge("torch-bfloat16", PROBE_MAX_ERROR * 1.01, pairs=60).passed
    for damaged in ('{"key": {"path": "x"}}', "garbage"):
        (tmp_path / VERDICTS_FILE).write_text(damaged)
        assert read_verdicts(tmp_path) == {}


def test_the_packaged_probe_has_a_few_dozen_pairs() -> None:
    groups = probe_groups()
    assert len(groups) == 10
    assert sum(len(docs) for _, docs in groups) == 60
    assert all(query and all(docs) for query, docs in groups)


# --------------------------------------------------------------------------- the measured choice


class _FakeCpu:
    """Fake candidates with known costs: running one advances a fake clock by its cost."""

    def __init__(self, costs: dict[str, float], errors: dict[str, float]) -> None:
        self.costs, self.errors = costs, errors
        self.now = 0.0
        self.built: list[str] = []
        self.runs = 0

    def build(self, name: str) -> str:
        if name not in self.costs:
            raise RuntimeError(f"{name} cannot run here")
        self.built.append(name)
        return name

    def check(self, name: str, runner: str) -> ProbeVerdict:
        return ProbeVerdict.judge(name, self.errors[name], pairs=60)

    def workload(self, runner: str) -> None:
        self.runs += 1
        self.now += self.costs[runner]

    def choose(self, candidates: list[str], cache: Path, key: str = "cpu-a") -> Any:
        from rerankkit.backends._chooser import choose_cpu_path

        return choose_cpu_path(
            candidates,
            build=self.build,
            check=self.check,
            workload=self.workload,
            pairs=30,
            exact={"exact-slow", "exact-fast"},
            cache=cache,
            key=key,
            clock=lambda: self.now,
        )


def test_the_chooser_takes_the_measured_fastest_and_reuses_its_cached_choice(
    tmp_path: Path,
) -> None:
    costs = {"lossy": 0.5, "exact-slow": 2.0, "exact-fast": 1.0}  # seconds per workload
    # Candidate order (the old flag rule's, lossy first) must not decide: speed does.
    cpu = _FakeCpu(costs, errors={"lossy": 0.01})
    choice, runner, cached = cpu.choose(["exact-slow", "lossy", "exact-fast", "absent"], tmp_path)
    assert (choice.path, runner, cached) == ("lossy", "lossy", False)
    assert choice.pairs_per_second == {"exact-slow": 15.0, "lossy": 60.0, "exact-fast": 30.0}
    assert list(choice.failed) == ["absent"]
    assert cpu.runs == 3 * 4  # a warm-up and three timed rounds each

    # A later process: the cached choice is built alone, nothing is timed or probed.
    later = _FakeCpu(costs, errors={})  # check() would raise KeyError if asked
    again, runner, cached = later.choose(["exact-slow", "lossy", "exact-fast"], tmp_path)
    assert (again, runner, cached) == (choice, "lossy", True)
    assert later.built == ["lossy"] and later.runs == 0

    # Another CPU (another key) is measured again; a lossy path that fails its probe is never
    # used, and the exact path wins ties within the margin (0.98 s is not 5% faster than 1 s).
    cpu = _FakeCpu({**costs, "lossy": 0.98}, errors={"lossy": 0.01})
    choice, runner, cached = cpu.choose(["lossy", "exact-slow", "exact-fast"], tmp_path, "cpu-b")
    assert (choice.path, cached) == ("exact-fast", False)
    cpu = _FakeCpu(costs, errors={"lossy": 0.2})
    choice, _, _ = cpu.choose(["lossy", "exact-slow", "exact-fast"], tmp_path, "cpu-c")
    assert choice.path == "exact-fast" and choice.probe_errors == {"lossy": 0.2}
    assert "lossy" not in choice.pairs_per_second


# --------------------------------------------------------------------------- real model


@pytest.fixture
def cache(conversion_cache: Path) -> Path:
    """The session's conversion cache: the trained model is converted once per session."""
    return conversion_cache


def _ranking_fidelity(reference: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    """Mean per-query Spearman and mean top-10 overlap (computed here with scipy/numpy)."""
    from scipy.stats import spearmanr

    rhos = [spearmanr(r, g).statistic for r, g in zip(reference, got, strict=True)]
    overlaps = [
        len(set(np.argsort(-r)[:10].tolist()) & set(np.argsort(-g)[:10].tolist())) / 10
        for r, g in zip(reference, got, strict=True)
    ]
    return float(np.mean(rhos)), float(np.mean(overlaps))


@pytest.mark.slow
@requires_shared
@requires_trained_ce
def test_default_and_onnx_auto_paths_keep_the_ranking_of_the_trained_ce(
    cache: Path,
    dl19: DL19Inputs,
    trained_ce_float32: Any,
    dl19_ce_scores: dict[str, dict[str, float]],
) -> None:
    from rerankkit import CrossEncoderReranker
    from rerankkit.backends._onnx import cache_entry_name, model_files_digest
    from rerankkit.backends._speed import cpu_flags

    cases = dl19.first_judged(3, 50)
    # The exact scores (float32, max_length 512) are computed once per session.
    assert trained_ce_float32.cpu_path == "torch-float32"  # dtype="float32": PyTorch's
    reference = [np.asarray([dl19_ce_scores[qid][d] for d in ids]) for qid, ids in cases]
    default = CrossEncoderReranker(TRAINED_CE, max_length=512)
    assert default.cpu_path in cpu_path_order(cpu_flags(), onnx=True, openvino=True)
    # The ONNX candidates (what a CPU without native bf16 tries): int8 if its probe passes.
    onnx_auto = CrossEncoderReranker(TRAINED_CE, backend="onnx", max_length=512)
    assert onnx_auto.cpu_path in ("onnx-int8", "onnx-float32")
    for reranker in (default, onnx_auto):
        got = [np.asarray(reranker.score(*dl19.texts(qid, ids))) for qid, ids in cases]
        spearman, top10 = _ranking_fidelity(reference, got)
        assert spearman >= 0.99, reranker.cpu_path
        assert top10 >= 0.95, reranker.cpu_path
    entry = cache / "onnx" / cache_entry_name(model_files_digest(TRAINED_CE))
    verdicts = json.loads((entry / "verdicts.json").read_text())
    assert {v["path"] for v in verdicts.values()} >= {"onnx-int8"}


@pytest.mark.slow
@requires_shared
@requires_trained_ce
def test_fallback_engages_when_the_converted_model_fails_its_probe(
    cache: Path,
    tiny_cross_encoder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    dl19: DL19Inputs,
) -> None:
    from rerankkit import CrossEncoderReranker
    from rerankkit.backends._chooser import CHOICES_FILE
    from rerankkit.backends._onnx import cache_entry_name, ensure_onnx_model, model_files_digest

    # A private copy of the cache whose int8 file is replaced by another model's int8 export
    # (same inputs and output, wrong weights): a damaged conversion the runtime loads happily.
    private = tmp_path / "cache"
    shutil.copytree(cache, private)
    monkeypatch.setenv("RERANKKIT_CACHE", str(private))
    entry = private / "onnx" / cache_entry_name(model_files_digest(TRAINED_CE))
    ensure_onnx_model(TRAINED_CE, quantize="int8")  # present whatever ran before
    wrong = ensure_onnx_model(tiny_cross_encoder, quantize="int8", cache_dir=tmp_path / "tiny")
    shutil.copyfile(wrong, entry / "model.int8.onnx")
    (entry / CHOICES_FILE).unlink(missing_ok=True)  # an earlier test's choice: choose again

    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        reranker = CrossEncoderReranker(TRAINED_CE, backend="onnx", max_length=128)
    assert reranker.cpu_path == "onnx-float32"  # the exact ONNX path took over
    assert "failed its fidelity probe" in caplog.text
    exact = CrossEncoderReranker(TRAINED_CE, dtype="float32", max_length=128)
    query, docs = dl19.texts(*dl19.first_judged(1, 20)[0])
    np.testing.assert_allclose(reranker.score(query, docs), exact.score(query, docs), atol=1e-4)
    failed = [
        v for v in json.loads((entry / "verdicts.json").read_text()).values() if not v["passed"]
    ]
    # The replaced file's own verdict (keyed by its bytes), far above the bar.
    assert any(v["path"] == "onnx-int8" and v["error"] > 1.0 for v in failed)

    # A file that is not a model at all: the path cannot be built, the next one is used.
    (entry / "model.int8.onnx").write_bytes(b"not an onnx model")
    (entry / CHOICES_FILE).unlink()  # the cached choice (onnx-float32) would skip the build
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        again = CrossEncoderReranker(TRAINED_CE, backend="onnx", max_length=128)
    assert again.cpu_path == "onnx-float32"
    assert "could not be built" in caplog.text


def test_a_cached_converted_choice_starts_without_loading_the_torch_weights(
    tiny_cross_encoder: Path,
    conversion_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import transformers

    from conftest import build_tiny_bert
    from rerankkit import CrossEncoderReranker, ModelLoadError

    auto = transformers.AutoModelForSequenceClassification
    load, loaded = auto.from_pretrained, []

    def counted(name: Any, *args: Any, **kwargs: Any) -> Any:
        loaded.append(str(name))
        return load(name, *args, **kwargs)

    monkeypatch.setattr(auto, "from_pretrained", counted)
    # The session's conversions; batch_size 7 is a choice no other test has measured.
    options: dict[str, Any] = {"backend": "onnx", "max_length": 64, "batch_size": 7}
    first = CrossEncoderReranker(tiny_cross_encoder, **options)
    assert first.cpu_path in ("onnx-int8", "onnx-float32") and str(tiny_cross_encoder) in loaded
    loaded.clear()
    later = CrossEncoderReranker(tiny_cross_encoder, **options)
    assert loaded == []  # the cached converted path runs without the torch weights
    assert later.cpu_path == first.cpu_path and later.model is None
    assert later.cpu_path_speeds == first.cpu_path_speeds
    docs = ["bm25 ranks documents", "a recipe for soup", "ranking with transformers"]
    np.testing.assert_allclose(later.score("ranking", docs), first.score("ranking", docs))

    # A checkpoint without head weights accepted once is still refused later: its choice was
    # cached under a key naming the untrained weights, which a later start never skips to.
    plain = build_tiny_bert(tmp_path / "plain", head=False)
    CrossEncoderReranker(plain, **options, allow_untrained_head=True)
    with pytest.raises(ModelLoadError, match=r"classifier\.weight"):
        CrossEncoderReranker(plain, **options)
