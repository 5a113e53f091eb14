"""Pointwise LLM reranking: answer parsing, P(yes), ratings, concurrency, timeouts, retries."""

from __future__ import annotations

import asyncio
import logging
import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerankkit import Completion, CompletionLLM, FunctionLLM, LLMPointwiseReranker, llm_reranker
from rerankkit._result import LOWEST_SCORE
from rerankkit._retry import RetryPolicy, is_transient
from rerankkit.errors import LLMCallError
from rerankkit.llm._parsing import p_yes_from_logprobs, parse_rating, parse_yes_no
from rerankkit.llm._protocol import as_llm, to_completion
from rerankkit.testing import ConcurrencyRecordingLLM, ScriptedLLM

# --- pure parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes", 1.0),
        (" yes.", 1.0),
        ("YES!", 1.0),
        ("**Yes** - it answers", 1.0),
        ("No", 0.0),
        ("no, it does not", 0.0),
        ("Not relevant", 0.0),
        ("Relevant", 1.0),
        ("<think>yes? no?</think>\nYes", 1.0),
        ("<think>unfinished", None),
        ("\uff39\uff45\uff53", 1.0),  # fullwidth "Yes"
        ("Maybe", None),
        ("", None),
        ("The answer is yes", None),
    ],
)
def test_parse_yes_no(answer: str, expected: float | None) -> None:
    assert parse_yes_no(answer) == expected


def test_p_yes_sums_surface_variants_against_no() -> None:
    position = {
        "Yes": math.log(0.5),
        " yes": math.log(0.1),
        "YES": math.log(0.05),
        "\u2581yes": math.log(0.05),
        "No": math.log(0.15),
        " no": math.log(0.05),
        "Maybe": math.log(0.1),
    }
    p = p_yes_from_logprobs([position])
    assert p == pytest.approx((0.5 + 0.1 + 0.05 + 0.05) / (0.5 + 0.1 + 0.05 + 0.05 + 0.15 + 0.05))


def test_p_yes_uses_first_position_that_mentions_an_answer() -> None:
    positions = [{"**": -0.01, "The": -5.0}, {"No": math.log(0.6), "Yes": math.log(0.2)}]
    assert p_yes_from_logprobs(positions) == pytest.approx(0.25)
    assert p_yes_from_logprobs([{"**": -0.01}]) is None
    assert p_yes_from_logprobs(None) is None and p_yes_from_logprobs([]) is None
    assert p_yes_from_logprobs([{"Yes": -0.3}]) == 1.0


@settings(max_examples=200, deadline=None)
@given(yes=st.floats(-30, 0), no=st.floats(-30, 0), bump=st.floats(0.01, 5))
def test_p_yes_is_a_probability_and_monotone_in_yes(yes: float, no: float, bump: float) -> None:
    p = p_yes_from_logprobs([{"yes": yes, "no": no}])
    assert p is not None and 0.0 <= p <= 1.0
    assert p == pytest.approx(1 / (1 + math.exp(no - yes)))
    higher = p_yes_from_logprobs([{"yes": min(yes + bump, 0.0), "no": no}])
    # monotone up to float rounding: near 1.0 the two sides of the softmax differ by an ulp
    assert higher is not None and (higher >= p or math.isclose(higher, p, rel_tol=1e-12))


@pytest.mark.parametrize(
    ("answer", "scale", "expected"),
    [
        ("7", (0, 10), 7.0),
        ("Rating: 8", (0, 10), 8.0),
        ("score = 3.5", (0, 10), 3.5),
        ("I would give it 9/10.", (0, 10), 9.0),
        ("4 out of 5", (1, 5), 4.0),
        ("Relevance: **2**", (0, 3), 2.0),
        ("<think>maybe 9</think> 3", (0, 10), 3.0),
        ("\uff18", (0, 10), 8.0),
        ("Score: 12. Corrected: 4", (0, 10), 4.0),
        ("It is 42.", (0, 10), None),
        ("great", (0, 10), None),
        ("-1", (0, 10), None),
        ("v2 model says 6", (0, 10), 6.0),
        ("10", (0, 10), 10.0),
        # issue 11: a restated scale is not a rating (these read as its low end, 0 or 1, before)
        ("On a scale from 0 to 10, I would give it 8.", (0, 10), 8.0),
        ("From 0 (irrelevant) to 10 (perfect): 6", (0, 10), 6.0),
        ("Relevance (0-10): 9", (0, 10), 9.0),
        ("Between 1 and 5 I'd say 4", (1, 5), 4.0),
        ("scale 0\u201310, my answer: 3", (0, 10), 3.0),
        ("0-10", (0, 10), None),  # the scale alone rates nothing
        ("7 to 8", (0, 10), 7.0),  # a range other than the scale is still read
        ("12/10", (0, 10), None),  # out of scale: its denominator is no rating (was 10)
        ("3/4 of it is relevant, I'd give it 6", (0, 10), 6.0),  # was 3
    ],
)
def test_parse_rating(answer: str, scale: tuple[float, float], expected: float | None) -> None:
    assert parse_rating(answer, *scale) == expected


@settings(max_examples=300, deadline=None)
@given(answer=st.text(), low=st.integers(-5, 5), width=st.integers(1, 20))
def test_any_rating_answer_is_in_scale_or_none(answer: str, low: int, width: int) -> None:
    value = parse_rating(answer, low, low + width)
    assert value is None or low <= value <= low + width


# --- the reranker ----------------------------------------------------------------------------


def _passage(prompt: str) -> str:
    return prompt.split("<passage>\n", 1)[1].split("\n</passage>", 1)[0]


def test_yes_no_with_logprobs_scores_p_yes() -> None:
    table = {"a": (0.9, 0.1), "b": (0.2, 0.7), "c": (0.5, 0.5)}

    def answer(prompt: str) -> Completion:
        p_yes, p_no = table[_passage(prompt)]
        return Completion("Yes", top_logprobs=[{" Yes": math.log(p_yes), "No": math.log(p_no)}])

    results = LLMPointwiseReranker(answer).rerank("q", ["a", "b", "c"])
    assert [r.index for r in results] == [0, 2, 1]
    assert [r.score for r in results] == pytest.approx([0.9, 0.5, 0.2 / 0.9])


def test_yes_no_without_logprobs_parses_text() -> None:
    llm = FunctionLLM(lambda p: "Yes." if "cat" in _passage(p) else "No.")
    reranker = LLMPointwiseReranker(llm)
    assert reranker.score("pets", ["a dog", "a cat", "cats"]) == [0.0, 1.0, 1.0]
    assert reranker.rerank("pets", ["a dog", "a cat"])[0].details == {"llm_answer": "Yes."}


def test_rating_method_and_scale() -> None:
    llm = ScriptedLLM([lambda p: f"Rating: {len(_passage(p))}"], repeat_last=True)
    reranker = LLMPointwiseReranker(llm, method="rating", scale=(1, 5), max_concurrency=1)
    assert reranker.score("q", ["ab", "abcd", "a", "abcdefgh"]) == [2.0, 4.0, 1.0, LOWEST_SCORE]
    assert "from 1 (completely irrelevant) to 5" in llm.prompts[0]
    assert llm_reranker(llm, method="rating").method == "rating"
    assert llm_reranker(llm, method="pointwise").method == "yes_no"


def test_prompts_are_overridable_and_checked() -> None:
    llm = ScriptedLLM(["yes"], repeat_last=True)
    LLMPointwiseReranker(llm, prompt="{query}|{document}").score("q", ["d"])
    assert llm.prompts == ["q|d"]
    LLMPointwiseReranker(llm, method="rating", prompt="{low}-{high}:{query}|{document}").score(
        "q", ["d"]
    )
    assert llm.prompts[-1] == "0-10:q|d"
    with pytest.raises(ValueError, match="document"):
        LLMPointwiseReranker(llm, prompt="{query}")
    with pytest.raises(ValueError, match="unknown"):
        LLMPointwiseReranker(llm, prompt="{query}{document}{low}")  # low only for ratings
    with pytest.raises(ValueError, match="method"):
        LLMPointwiseReranker(llm, method="pairwise")  # type: ignore[arg-type]


def test_documents_are_cut_in_the_prompt_only() -> None:
    llm = ScriptedLLM(["yes"])
    reranker = LLMPointwiseReranker(llm, max_document_chars=5)
    doc = "abcdefghij"
    reranker.score("q", [doc])
    assert _passage(llm.prompts[0]) == "abcde" and doc == "abcdefghij"


def test_korean() -> None:
    llm = FunctionLLM(lambda p: "yes" if "서울" in _passage(p) else "no")
    docs = ["부산은 항구 도시이다.", "서울은 대한민국의 수도이다."]
    results = LLMPointwiseReranker(llm).rerank("대한민국의 수도는 어디인가?", docs)
    assert [r.index for r in results] == [1, 0]


# --- failures ----------------------------------------------------------------------------------


def test_failed_and_unparseable_documents_sink_but_stay(caplog: pytest.LogCaptureFixture) -> None:
    llm = ScriptedLLM(["yes", ValueError("content filter"), "I refuse", "no"])
    reranker = LLMPointwiseReranker(llm, max_concurrency=1)
    with caplog.at_level(logging.WARNING, logger="rerankkit.llm._pointwise"):
        results = reranker.rerank("q", ["a", "b", "c", "d"])
    assert [(r.index, r.score) for r in results] == [
        (0, 1.0),
        (3, 0.0),
        (1, 0.0),  # unjudged: the lowest judged score, flagged
        (2, 0.0),
    ]
    assert results[2].details == {
        "rerank_failed": True,
        "rerank_error": "ValueError: content filter",
    }
    assert results[3].details == {
        "llm_answer": "I refuse",
        "rerank_failed": True,
        "rerank_error": "unparseable answer",
    }
    assert "rerank_failed" not in results[1].details  # a genuine "no" is not a failure
    assert "2 of 4 documents" in caplog.text and "content filter" in caplog.text


def test_on_error_raise_and_failure_score() -> None:
    with pytest.raises(LLMCallError, match="content filter") as raised:
        LLMPointwiseReranker(ScriptedLLM([ValueError("content filter")]), on_error="raise").score(
            "q", ["a"]
        )
    assert isinstance(raised.value.__cause__, ValueError)  # the provider's error is chained
    reranker = LLMPointwiseReranker(ScriptedLLM([RuntimeError("x")]), failure_score=-1.0)
    assert reranker.score("q", ["a"]) == [-1.0]


def test_transient_errors_retry_with_backoff() -> None:
    llm = ScriptedLLM([TimeoutError("t"), ConnectionError("c"), "yes"])
    assert LLMPointwiseReranker(llm, backoff=0.001).score("q", ["a"]) == [1.0]
    assert llm.calls == 3
    exhausted = ScriptedLLM([TimeoutError("t")], repeat_last=True)
    assert LLMPointwiseReranker(exhausted, backoff=0.0, max_retries=3).score("q", ["a"]) == [
        LOWEST_SCORE
    ]
    assert exhausted.calls == 4
    permanent = ScriptedLLM([ValueError("bad request")], repeat_last=True)
    LLMPointwiseReranker(permanent, backoff=0.0).score("q", ["a"])
    assert permanent.calls == 1


def test_retry_predicate_recognises_provider_errors() -> None:
    class RateLimitError(Exception):
        pass

    class APIStatusError(Exception):
        def __init__(self, status_code: int) -> None:
            super().__init__(status_code)
            self.status_code = status_code

    assert is_transient(RateLimitError()) and is_transient(APIStatusError(503))
    assert is_transient(asyncio.TimeoutError())
    assert not is_transient(APIStatusError(400)) and not is_transient(KeyError("x"))
    llm = ScriptedLLM([APIStatusError(400)], repeat_last=True)
    LLMPointwiseReranker(llm, backoff=0.0, retry_on=lambda e: True, max_retries=2).score("q", ["a"])
    assert llm.calls == 3  # a custom predicate decides


def test_timeout_per_call(caplog: pytest.LogCaptureFixture) -> None:
    release, slow_finished = threading.Event(), threading.Event()

    def answer(prompt: str) -> str:
        if _passage(prompt) == "slow":
            release.wait(60)  # hangs until the test lets it go (60 s: only if it never does)
            slow_finished.set()
        return "yes"

    reranker = LLMPointwiseReranker(answer, timeout=0.1, max_retries=0, max_concurrency=2)
    try:
        with caplog.at_level(logging.WARNING, logger="rerankkit.llm._pointwise"):
            scores = reranker.score("q", ["fast", "slow", "fast"])
        assert not slow_finished.is_set()  # the scores came while the slow call still hung
    finally:
        release.set()
    assert scores == [1.0, LOWEST_SCORE, 1.0] and "TimeoutError" in caplog.text


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 25),
    script=st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(["yes", "No", "Rating: 4", "7/10", "<think>no</think>yes"]),
            st.builds(
                lambda lp: Completion("?", top_logprobs=[{"Yes": lp, "No": -1.0}]),
                st.floats(-20, 0),
            ),
            st.sampled_from([RuntimeError("boom"), TimeoutError("slow"), KeyError("k")]),
        ),
        min_size=1,
        max_size=10,
    ),
    method=st.sampled_from(["yes_no", "rating"]),
)
def test_random_answers_never_lose_or_duplicate_documents(
    n: int, script: list, method: str
) -> None:
    llm = ScriptedLLM(script, repeat_last=True)
    reranker = LLMPointwiseReranker(
        llm,
        method=method,
        backoff=0.0,
        max_retries=1,
        max_concurrency=3,  # type: ignore[arg-type]
    )
    results = reranker.rerank("q", [f"doc {i}" for i in range(n)])
    assert sorted(r.index for r in results) == list(range(n))
    high = 1.0 if method == "yes_no" else 10.0
    assert all(r.score == LOWEST_SCORE or 0.0 <= r.score <= high for r in results)


# --- concurrency ---------------------------------------------------------------------------------


def test_sync_thread_pool_respects_the_limit() -> None:
    llm = ConcurrencyRecordingLLM("yes", delay=0.08)
    scores = LLMPointwiseReranker(llm, max_concurrency=4).score("q", [f"d{i}" for i in range(12)])
    assert scores == [1.0] * 12 and llm.calls == 12
    assert llm.max_concurrency == 4


async def test_async_semaphore_respects_the_limit_with_native_acomplete() -> None:
    llm = ConcurrencyRecordingLLM("No", delay=0.08)
    reranker = LLMPointwiseReranker(llm, max_concurrency=3)
    results = await reranker.arerank("q", [f"d{i}" for i in range(10)])
    assert [r.score for r in results] == [0.0] * 10
    assert llm.max_concurrency == 3 and llm.calls == 10


async def test_async_with_a_sync_llm_keeps_the_loop_free() -> None:
    recorder = ConcurrencyRecordingLLM("yes", delay=0.1)
    in_flight, loop_ran = threading.Event(), threading.Event()
    loop_seen: list[bool] = []

    def complete(prompt: str) -> Completion:
        in_flight.set()
        # A call holds its thread until the event loop has run (60 s: only if it never does).
        loop_seen.append(loop_ran.wait(60))
        return recorder.complete(prompt)

    async def run_on_the_loop_while_a_call_is_in_flight() -> None:
        await asyncio.to_thread(in_flight.wait, 60)
        loop_ran.set()  # runs on the loop's thread: only possible if no call blocks it

    llm = FunctionLLM(complete)  # no native async: runs in the thread pool
    scores, _ = await asyncio.gather(
        LLMPointwiseReranker(llm, max_concurrency=2).ascore("q", ["a"] * 6),
        run_on_the_loop_while_a_call_is_in_flight(),
    )
    assert scores == [1.0] * 6
    assert recorder.max_concurrency == 2
    assert loop_seen == [True] * 6  # the loop kept running while the calls were in flight


async def test_sync_rerank_works_inside_a_running_loop() -> None:
    llm = ScriptedLLM(["yes"], repeat_last=True)
    assert LLMPointwiseReranker(llm).score("q", ["a", "b"]) == [1.0, 1.0]


def test_retry_policy_is_validated() -> None:
    for bad in ({"max_concurrency": 0}, {"timeout": 0}, {"max_retries": -1}, {"backoff": -1}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
    for bad in ({"max_backoff": -1}, {"max_retry_after": float("inf")}, {"timeout": "x"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RetryPolicy(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_in_flight was renamed max_concurrency"):
        RetryPolicy(max_in_flight=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_concurrency"):
        LLMPointwiseReranker(lambda p: "", max_concurrency=0)
    with pytest.raises(ValueError, match="scale"):
        LLMPointwiseReranker(lambda p: "", scale=(5, 1))
    with pytest.raises(ValueError, match="on_error"):
        LLMPointwiseReranker(lambda p: "", on_error="ignore")  # type: ignore[arg-type]


# --- protocol ----------------------------------------------------------------------------------


def test_protocol_objects() -> None:
    assert isinstance(FunctionLLM(lambda p: p), CompletionLLM)
    assert isinstance(as_llm(lambda p: "x"), FunctionLLM)
    assert to_completion("x") == Completion("x")
    with pytest.raises(TypeError, match="str or Completion"):
        to_completion(3)
    with pytest.raises(TypeError):
        as_llm(object())
    with pytest.raises(ValueError, match="log-probabilities"):
        Completion("x", top_logprobs=[{"yes": 0.5}])
    with pytest.raises(TypeError, match="async"):
        FunctionLLM(lambda p: p, afn=lambda p: p)  # type: ignore[arg-type]
    c = Completion("x", top_logprobs=[{"yes": -1}])
    assert c.top_logprobs is not None and c.top_logprobs[0]["yes"] == -1.0
    assert threading.active_count() >= 1
