"""One validation rule for integers and choices everywhere: same error type for the same mistake."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rerankkit import CascadeReranker, FusionReranker, LLMListwiseReranker, ScoreCache
from rerankkit._validation import check_choice, check_int, check_number
from rerankkit.compose._fusion import fuse_runs
from rerankkit.testing import KeywordReranker, ScriptedLLM

DOCS = ["a cat", "cat cat cat", "a dog", "cat cat"]


def _rerank(top_n: Any) -> Any:
    return KeywordReranker().rerank("cat", DOCS, top_n=top_n)


def _fuse(top_n: Any) -> Any:
    return fuse_runs([{"q": {"a": 2.0, "b": 1.0}}], top_n=top_n)


def _cascade(top_n: Any) -> Any:
    return CascadeReranker([(KeywordReranker(), top_n), (KeywordReranker(), None)])


def _fusion_rerank(top_n: Any) -> Any:
    return FusionReranker([KeywordReranker(), KeywordReranker()]).rerank("cat", DOCS, top_n=top_n)


ENTRY_POINTS = [_rerank, _fuse, _cascade, _fusion_rerank]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("bad", [2.5, "3", True])
def test_a_non_integer_count_is_a_type_error_everywhere(entry: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match=r"top_n must be an int"):
        entry(bad)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("bad", [0, -3, np.int64(0)])
def test_a_count_below_one_is_a_value_error_everywhere(entry: Any, bad: Any) -> None:
    with pytest.raises(ValueError, match=r"top_n must be >= 1"):
        entry(bad)


def test_numpy_integers_are_accepted_as_counts() -> None:
    results = _rerank(np.int64(2))
    assert [r.index for r in results] == [1, 3]
    assert _fuse(np.int32(1)) == {"q": {"a": 1 / 61}}
    reranker = LLMListwiseReranker(
        ScriptedLLM(["[2] > [1]"]), window_size=np.int64(4), stride=np.int16(2)
    )
    assert reranker.rerank("q", ["x", "y"])[0].index == 1
    assert ScoreCache(maxsize=np.uint8(3)).maxsize == 3
    assert type(check_int(np.int64(7), "n")) is int  # a plain int comes back


def test_bounds_and_choices_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^stride must be < window_size \(4\) .*, got 5$"):
        LLMListwiseReranker(ScriptedLLM([]), window_size=4, stride=5)
    with pytest.raises(
        ValueError, match=r"^on_error must be one of \['unranked', 'raise'\], got 'x'$"
    ):
        LLMListwiseReranker(ScriptedLLM([]), on_error="x")  # type: ignore[arg-type]
    # a value of the wrong type for a choice is simply not one of the choices
    with pytest.raises(ValueError, match=r"^method must be one of"):
        FusionReranker([KeywordReranker()], method=["rrf"])  # type: ignore[arg-type]
    assert check_choice(None, "normalization", ("minmax", None)) is None
    with pytest.raises(ValueError, match=r"weights\[1\] must be >= 0"):
        FusionReranker([KeywordReranker(), KeywordReranker()], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="k must be a finite number"):
        check_number(float("inf"), "k")


def test_a_choice_matches_in_kind_not_only_by_equality() -> None:
    flags = (None, True, False)
    for bad in (1, 0, 1.0, "True"):
        with pytest.raises(ValueError, match="batch_queries must be one of"):
            check_choice(bad, "batch_queries", flags)
    assert check_choice(True, "batch_queries", flags) is True
    assert check_choice(None, "batch_queries", flags) is None
    for bad in (1.0, True):
        with pytest.raises(ValueError, match="k must be one of"):
            check_choice(bad, "k", (1, 2))
    assert check_choice(np.int64(2), "k", (1, 2)) == 2  # any integer type, as in check_int
    with pytest.raises(ValueError, match="method must be one of"):
        check_choice({"unhashable": 1}, "method", ("rrf",))


def test_a_spec_option_of_the_wrong_type_is_a_type_error_as_in_the_constructor() -> None:
    from rerankkit._specs import build_reranker

    pytest.importorskip("torch")
    spec = "cross-encoder:/no/such/model?batch_size=2.5"  # refused before any model load
    with pytest.raises(TypeError, match=r"reranker spec .*batch_size must be an int, got float"):
        build_reranker(spec)
    with pytest.raises(ValueError, match=r"reranker spec .*batch_size must be >= 1, got 0"):
        build_reranker("cross-encoder:/no/such/model?batch_size=0")


# --------------------------------------------------------------------------- invalid Unicode
# One rule at the core's boundary (issues 24/25): a lone surrogate is refused, naming the
# argument and the character offset, before any model or service sees the text.


def _entry_points() -> dict[str, Any]:
    import asyncio

    from rerankkit.adapting import score_pairs
    from rerankkit.distributed._rows import rerank_rows

    keyword = KeywordReranker()
    return {
        "rerank": lambda q, d: keyword.rerank(q, d),
        "score": lambda q, d: keyword.score(q, d),
        "arerank": lambda q, d: asyncio.run(keyword.arerank(q, d)),
        "score_many": lambda q, d: keyword.score_many([("fine", ["ok"]), (q, d)]),
        "score_pairs": lambda q, d: score_pairs(keyword, [(q, doc) for doc in d]),
        "rerank_rows": lambda q, d: rerank_rows(keyword, [q], [d])[0].error,
    }


@pytest.mark.parametrize(
    ("entry", "argument"),
    [
        ("rerank", "documents[1]"),
        ("score", "documents[1]"),
        ("arerank", "documents[1]"),
        ("score_many", "groups[1] documents[1]"),
        ("score_pairs", "text_pairs[1] document"),
        ("rerank_rows", "documents[1]"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_the_document_and_offset(
    entry: str, argument: str
) -> None:
    from rerankkit.errors import InvalidTextError

    call = _entry_points()[entry]
    message = f"{argument} is not valid Unicode: lone surrogate U+D835 at character 4"
    if entry == "rerank_rows":  # a bad row fails alone, with the reason in its outcome
        assert call("paris", ["fine", "ok. \ud835 Paris"]) == f"InvalidTextError: {message}"
        return
    with pytest.raises(InvalidTextError) as caught:
        call("paris", ["fine", "ok. \ud835 Paris"])
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError) and caught.value.offset == 4


def test_a_lone_surrogate_in_the_query_is_refused_and_valid_text_is_not() -> None:
    from rerankkit.errors import InvalidTextError

    keyword = KeywordReranker()
    with pytest.raises(InvalidTextError, match=r"^query is not valid Unicode: .* U\+DC00 at "):
        keyword.rerank("a\udc00", ["x"])
    with pytest.raises(InvalidTextError, match=r"^groups\[0\] query is not valid Unicode"):
        keyword.score_many([("\udc00", ["x"])])
    # a surrogate pair written properly, emoji, accents: valid, scored as before
    first, second = keyword.score("café 😀", ["café 😀", "\U0001d40faris"])
    assert first > second
