"""Issue 11, kinds 1 and 6: listwise answers without brackets, and window arithmetic.

Kind 1: RankGPT-style parsers read every bare number of an answer as a passage id, so the
refusal "None of the 3 passages answer the question." put passage 3 first with score 1.0.
Now a number is an id only inside a structure that only a ranking has; refusals and prose
keep the window's order with one warning. The right orders below are written by hand (the
answer states them), and the property tests generate answers whose ranking (or absence of
one) is known by construction.

Kind 6: ``stride >= window_size`` never lets a document move between windows; it is refused
wherever windows are configured (one rule, ``rerankkit.llm._windows.check_window``).
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerankkit import LLMListwiseReranker, LLMPointwiseReranker, llm_reranker
from rerankkit.adapting import RerankSettings
from rerankkit.llm._listwise import WINDOW_ERRORS_KEY
from rerankkit.llm._parsing import parse_permutation, parse_rating
from rerankkit.testing import OracleLLM, ScriptedLLM

REFUSAL = "None of the 3 passages answer the question."

# --- kind 1: the quoted input ----------------------------------------------------------------


def test_the_quoted_refusal_does_not_reorder_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm = ScriptedLLM([REFUSAL])
    reranker = LLMListwiseReranker(llm)
    with caplog.at_level(logging.WARNING, logger="rerankkit.llm._listwise"):
        results = reranker.rerank("q", ["first", "second", "irrelevant third"])
    # input order kept: scores 1/(rank+1) by position, passage 3 stays last
    assert [(r.index, r.score) for r in results] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert len(caplog.records) == 1 and "states no ranking" in caplog.records[0].getMessage()
    assert results[2].details[WINDOW_ERRORS_KEY] == (
        f"window 1-3: no ranking in the answer {REFUSAL!r}",
    )
    assert parse_permutation(REFUSAL, 3).parsed == 0


@pytest.mark.parametrize(
    ("answer", "n", "order"),
    [
        # real rankings in plain numbers
        ("2 > 1 > 3", 3, (1, 0, 2)),
        ("2 1 3", 3, (1, 0, 2)),
        ("3, 1, 2", 3, (2, 0, 1)),
        ("Passage 2 > Passage 3 > Passage 1", 3, (1, 2, 0)),
        ("2 -> 3 -> 1", 3, (1, 2, 0)),
        # numbered and bulleted lists naming passages: the markers are not ids
        ("1. [2]\n2. [3]\n3. [1]", 3, (1, 2, 0)),
        ("1. Passage 2\n2. Passage 3\n3. Passage 1", 3, (1, 2, 0)),
        ("1) 3 - mentions the date\n2) 1\n3) 2", 3, (2, 0, 1)),
        ("- Passage 4\n- Passage 1", 4, (3, 0, 1, 2)),
        ("1. **Passage 2**: the only one about Paris\n2. **Passage 1**", 3, (1, 0, 2)),
        # a preamble (with a count in it) before the ranking
        ("Here is my ranking of the 4 passages: 3 > 1 > 4 > 2.", 4, (2, 0, 3, 1)),
        ("I compared the 3 passages.\nRanking:\n1. Passage 3\n2. Passage 1", 3, (2, 0, 1)),
        ("The order, most relevant first, is 2, 3, 1.", 3, (1, 2, 0)),
        ("Sure! [3] > [2] > [1]", 3, (2, 1, 0)),
        ("[2] is the most relevant, then [1].", 3, (1, 0, 2)),
        # counts, years, decimals, ordinals, ratings and refusals are not ids
        (REFUSAL, 3, (0, 1, 2)),
        ("Passage 3 does not answer the question.", 3, (0, 1, 2)),
        ("1. Passage 3 does not answer the question.", 3, (0, 1, 2)),
        ("None of [1], [2] or [3] is relevant.", 3, (0, 1, 2)),
        ("Passages 1, 2 and 3 are all off-topic.", 3, (0, 1, 2)),
        ("In 2023, 2 passages were published.", 3, (0, 1, 2)),
        ("I cannot rank these 4 passages.", 4, (0, 1, 2, 3)),
        ("The 2nd passage scores 7.5 out of 10.", 3, (0, 1, 2)),
        ("I'd give passage 2 a 3/10.", 3, (0, 1, 2)),
    ],
)
def test_answers_without_brackets(answer: str, n: int, order: tuple[int, ...]) -> None:
    assert parse_permutation(answer, n).order == order


@pytest.mark.parametrize(
    "answer",
    ["Passage 1 " * 40 + "x", "1    2     3     4 " * 10 + "x", "\n" * 3000 + "x", "7" * 5000],
)
def test_long_almost_rankings_are_read_in_one_go(answer: str) -> None:
    # each gap between ids matches one way only: these took exponential time (or, for the
    # 5,000-digit run, raised ValueError from int()) before they were made unambiguous
    assert parse_permutation(answer, 5).parsed == 0


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (REFUSAL, None),  # the same refusal to a rating prompt is no rating of 3
        ("All 4 documents were checked; rating: 6", 6.0),
        ("2 times more relevant than the others: 7", 7.0),
        ("I'd rate it a 7 because it names the tower.", 7.0),
        ("Around 5% of it is relevant.", None),
    ],
)
def test_counts_are_not_ratings_either(answer: str, expected: float | None) -> None:
    assert parse_rating(answer, 0, 10) == expected
    llm = ScriptedLLM([answer])
    result = LLMPointwiseReranker(llm, method="rating").rerank("q", ["d"])[0]
    assert result.details.get("rerank_failed", False) is (expected is None)


# A restated scale is not a rating: those cases are in test_pointwise.py::test_parse_rating.


@pytest.mark.parametrize("answer", ["7" * 20000, "7" * 20000 + " out of 10"])
def test_a_long_digit_run_is_read_in_one_go(answer: str) -> None:
    # the fraction pattern could start inside the run: 20,000 digits took ~15 s
    assert parse_rating(answer, 0, 10) is None


def test_a_numbered_list_reorders_a_real_window() -> None:
    llm = ScriptedLLM(["Ranking:\n1. Passage 3\n2. Passage 1\n3. Passage 2"])
    results = LLMListwiseReranker(llm).rerank("q", ["a", "b", "c"])
    assert [(r.index, r.score) for r in results] == [(2, 1.0), (0, 0.5), (1, 1 / 3)]
    assert all(WINDOW_ERRORS_KEY not in r.details for r in results)


# --- kind 1: properties over generated answers -------------------------------------------------

WORDS = st.sampled_from(
    ["the", "query", "asks", "about", "Paris", "water", "boiling", "history", "and", "it"]
)
TOPIC = st.sampled_from(["Paris", "the Eiffel tower", "boiling water", "the 1998 final"])
SMALL = st.integers(1, 30)


def _sentence(template: str, **parts: st.SearchStrategy) -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(parts).map(lambda values: template.format(**values))


# Text that states no ranking: counts, years, decimals, ratings, ordinals, list markers
# followed by prose, passages mentioned in refusals and verdicts.
NO_RANKING_SENTENCES = st.one_of(
    _sentence("None of the {k} passages answer the question.", k=SMALL),
    _sentence("There are {k} passages about {t}.", k=SMALL, t=TOPIC),
    _sentence("Passage {i} does not answer the question.", i=SMALL),
    _sentence("Passage {i} is not relevant to {t}.", i=SMALL, t=TOPIC),
    _sentence("[{i}] does not mention {t}.", i=SMALL, t=TOPIC),
    _sentence(
        "In {y}, {k} studies reported {p}% growth.", y=st.integers(1900, 2030), k=SMALL, p=SMALL
    ),
    _sentence("The score was {a}.{b} out of 10.", a=st.integers(0, 9), b=st.integers(0, 9)),
    _sentence("I would rate it {a}/10.", a=st.integers(0, 10)),
    _sentence("I cannot rank these {k} passages.", k=SMALL),
    _sentence("Sorry, I can't tell which of the {k} passages is best.", k=SMALL),
    _sentence("The {o} passage is vague.", o=st.sampled_from(["1st", "2nd", "3rd", "4th"])),
    _sentence("{i}. The {t} passage is off-topic.", i=SMALL, t=TOPIC),
    st.lists(WORDS, min_size=1, max_size=8).map(lambda w: " ".join(w).capitalize() + "."),
)
NO_RANKING = st.lists(NO_RANKING_SENTENCES, min_size=1, max_size=5).flatmap(
    lambda sentences: st.sampled_from([" ", "\n", "\n\n"]).map(lambda sep: sep.join(sentences))
)

# Neutral prose around a ranking (no refusal: the answer does rank).
PREAMBLE = st.lists(
    st.one_of(
        _sentence("Here is the ranking of the {k} passages.", k=SMALL),
        _sentence("I compared {k} passages about {t}.", k=SMALL, t=TOPIC),
        _sentence(
            "In {y}, {k} studies reported {p}% growth.", y=st.integers(1900, 2030), k=SMALL, p=SMALL
        ),
        st.lists(WORDS, min_size=1, max_size=8).map(lambda w: " ".join(w).capitalize() + "."),
    ),
    max_size=3,
).map(" ".join)


def _ranking_text(ids: list[int], style: str) -> str:
    if style == "brackets":
        return " > ".join(f"[{i}]" for i in ids)
    if style == "arrows":
        return " > ".join(str(i) for i in ids)
    if style == "named":
        return " > ".join(f"Passage {i}" for i in ids)
    if style == "commas":
        return "The ranking is " + ", ".join(str(i) for i in ids) + "."
    if style == "numbered_brackets":
        return "\n".join(f"{rank}. [{i}]" for rank, i in enumerate(ids, start=1))
    if style == "numbered_named":
        return "\n".join(f"{rank}. Passage {i}" for rank, i in enumerate(ids, start=1))
    if style == "numbered_bare":
        return "\n".join(f"{rank}. {i}" for rank, i in enumerate(ids, start=1))
    return "\n".join(f"- Passage {i}" for i in ids)  # bullets


STYLES = st.sampled_from(
    [
        "brackets",
        "arrows",
        "named",
        "commas",
        "numbered_brackets",
        "numbered_named",
        "numbered_bare",
        "bullets",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    perm=st.integers(2, 12).flatmap(lambda n: st.permutations(list(range(1, n + 1)))),
    style=STYLES,
    preamble=PREAMBLE,
    postamble=st.sampled_from(["", "\n\nI hope this helps.", " These were all close."]),
)
def test_a_ranking_embedded_in_prose_is_recovered(
    perm: list[int], style: str, preamble: str, postamble: str
) -> None:
    if style == "numbered_bare" and postamble.startswith(" "):
        # "2. 3 These were close." could be prose about 3 things; a bare list item's own
        # line must end after its id, so the remark goes on the next line
        postamble = "\n" + postamble.lstrip()
    answer = preamble + ("\n" if preamble else "") + _ranking_text(perm, style) + postamble
    parsed = parse_permutation(answer, len(perm))
    assert parsed.order == tuple(i - 1 for i in perm), answer
    assert (parsed.parsed, parsed.dropped) == (len(perm), 0)


@settings(max_examples=200, deadline=None)
@given(text=NO_RANKING, n=st.integers(2, 30))
def test_text_with_no_ranking_never_reorders(text: str, n: int) -> None:
    parsed = parse_permutation(text, n)
    assert parsed.order == tuple(range(n)), text
    assert parsed.parsed == 0


@settings(max_examples=30, deadline=None)
@given(text=NO_RANKING)
def test_no_generated_non_ranking_answer_reorders_a_window(text: str) -> None:
    docs = [f"passage {i}" for i in range(8)]
    reranker = LLMListwiseReranker(ScriptedLLM([text], repeat_last=True), window_size=4, stride=2)
    assert [r.index for r in reranker.rerank("q", docs)] == list(range(8))


# --- kind 6: window arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("window_size", "stride", "error", "message"),
    [
        (
            7,
            7,
            ValueError,
            r"^stride must be < window_size \(7\) so that consecutive windows overlap",
        ),
        (7, 8, ValueError, r"^stride must be < window_size \(7\)"),
        (20, 0, ValueError, r"^stride must be >= 1, got 0$"),
        (20, -5, ValueError, r"^stride must be >= 1, got -5$"),
        (1, 1, ValueError, r"^window_size must be >= 2, got 1$"),
        (0, None, ValueError, r"^window_size must be >= 2, got 0$"),
        (20, 2.5, TypeError, r"^stride must be an int, got float$"),
        (20, True, TypeError, r"^stride must be an int, got bool$"),
    ],
)
def test_impossible_windows_are_refused_everywhere(
    window_size: int, stride: int | None, error: type[Exception], message: str
) -> None:
    options = {"window_size": window_size, "stride": stride}
    llm = ScriptedLLM([])
    with pytest.raises(error, match=message):
        LLMListwiseReranker(llm, **options)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        llm_reranker(llm, "listwise", **options)
    with pytest.raises(error, match=message):
        RerankSettings.from_rerankkit_llm(llm, **options)  # what both adapters' from_llm call


def test_adapters_from_llm_refuse_a_stride_equal_to_the_window() -> None:
    from langchain_core.language_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    from langchain_rerankkit import RerankKitCompressor
    from llamaindex_rerankkit import RerankKitPostprocessor

    with pytest.raises(ValueError, match=r"^stride must be < window_size \(7\)"):
        RerankKitCompressor.from_llm(FakeListChatModel(responses=["[1]"]), window_size=7, stride=7)
    with pytest.raises(ValueError, match=r"^stride must be < window_size \(7\)"):
        RerankKitPostprocessor.from_llm(MockLLM(), window_size=7, stride=7)


def test_default_stride_is_half_the_window_so_documents_can_climb() -> None:
    # 20 documents, the most relevant at the bottom: with the quoted window_size=7, the
    # default stride (3) lets it climb to the top in one pass; stride=7 (now refused) would sort
    # disjoint blocks (13-20, 6-13, 0-6) and leave it at position 13.
    docs = [f"doc {i}" for i in range(20)]
    relevance = {doc: (100.0 if doc == "doc 19" else -i) for i, doc in enumerate(docs)}
    reranker = LLMListwiseReranker(OracleLLM(relevance), window_size=7)
    assert reranker.stride == 3
    assert reranker.rerank("q", docs, top_n=1)[0].index == 19
    assert LLMListwiseReranker(ScriptedLLM([]), window_size=2).stride == 1
