"""Issue 22, the core of the context step: sentence spans, packing into a budget, the
adaptive default, token counting, ``eval-context``'s measuring parts. Cheap rerankers only:
the model is not what is tested here."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rerankkit import ContextPruner, PrunedDocument
from rerankkit.context import approximate_tokens, split_sentences
from rerankkit.eval._context import covered, cut_documents, load_claims
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker

SENTENCES = [
    "Fig. 2 shows the effect, e.g. in mice.",
    "Dr. Smith et al. reported it in 2001.",
    "The U.S. trial ended early.",
    "이 연구는 2020년에 시작되었다.",
    "결과는 그림 2에 있다!",
    "Is it true?",
    "Cats purr when they are happy.",
    "A single word.",
]


def hashed(query: str, text: str) -> float:
    """A deterministic pseudo-random score in [0, 1)."""
    return int(hashlib.sha256(f"{query}|{text}".encode()).hexdigest()[:8], 16) / 2**32


PRUNER = ContextPruner(FunctionReranker(hashed))


def check_provenance(documents: list[str], pruned: list[PrunedDocument], marker: str) -> None:
    for p in pruned:
        original = documents[p.index]
        assert p.text == marker.join(original[start:end] for start, end in p.spans)
        flat = [offset for span in p.spans for offset in span]
        assert flat == sorted(flat) and all(start < end for start, end in p.spans)
        assert flat[0] >= 0 and flat[-1] <= len(original)
        assert p.tokens == approximate_tokens(p.text)
        assert p.original_tokens == approximate_tokens(original)


# -- sentences -----------------------------------------------------------------------------


def test_abbreviations_do_not_end_sentences() -> None:
    text = " ".join(SENTENCES[:3])
    assert [text[a:b] for a, b in split_sentences(text)] == SENTENCES[:3]


def test_korean_sentences_split_on_their_marks() -> None:
    text = "이 연구는 2020년에 시작되었다. 결과는 그림 2에 있다! 정말 그런가? 네, 약 3.5%입니다."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "이 연구는 2020년에 시작되었다.",
        "결과는 그림 2에 있다!",
        "정말 그런가?",
        "네, 약 3.5%입니다.",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_has_no_sentence(text: str) -> None:
    assert split_sentences(text) == []


def test_spans_hold_every_character_but_whitespace() -> None:
    text = "  One here.\n\nTwo there!  Three "
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["One here.", "Two there!", "Three"]
    outside = "".join(ch for i, ch in enumerate(text) if not any(a <= i < b for a, b in spans))
    assert not outside.strip()


# -- packing -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(SENTENCES), max_size=6), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(["cats", "trial results"]),
)
def test_budget_is_never_exceeded_and_spans_rebuild_the_text(
    docs: list[list[str]], budget: int, query: str
) -> None:
    documents = [" ".join(sentences) for sentences in docs]
    before = copy.deepcopy(documents)
    pruned = PRUNER.prune(query, documents, budget_tokens=budget)
    assert documents == before
    assert sum(p.tokens for p in pruned) <= budget
    check_provenance(documents, pruned, " … ")
    assert len({p.index for p in pruned}) == len(pruned)
    # greedy by score: the best sentence is kept whenever it fits alone
    scored = [
        (hashed(query, documents[d][a:b]), d, (a, b))
        for d in range(len(documents))
        for a, b in split_sentences(documents[d])
    ]
    if scored:
        _, d, span = max(scored, key=lambda item: item[0])
        if approximate_tokens(documents[d][span[0] : span[1]]) <= budget:
            assert any(p.index == d and covered(p.spans, span) for p in pruned)


def test_sentence_order_is_kept_and_a_dropped_run_is_one_marker() -> None:
    scores = {"A one.": 3.0, "B two.": 0.0, "C three.": 0.0, "D four.": 2.0, "E five.": 1.0}
    pruner = ContextPruner(FunctionReranker(lambda q, t: scores[t]), marker=" [...] ")
    document = " ".join(scores)
    (pruned,) = pruner.prune("q", [document], threshold=1.0)
    assert pruned.text == "A one. [...] D four. E five."
    assert pruned.spans == ((0, 6), (23, 38))
    assert pruned.score == 3.0


def test_threshold_keeps_exactly_the_sentences_at_or_above_it() -> None:
    documents = [" ".join(SENTENCES[:4]), " ".join(SENTENCES[4:])]
    pruned = PRUNER.prune("cats", documents, threshold=0.5)
    for d, document in enumerate(documents):
        expected = [
            s for s in split_sentences(document) if hashed("cats", document[s[0] : s[1]]) >= 0.5
        ]
        got = [p for p in pruned if p.index == d]
        kept = [s for s in split_sentences(document) if got and covered(got[0].spans, s)]
        assert kept == expected
    check_provenance(documents, pruned, " … ")


def test_adaptive_default_keeps_sentences_near_the_best_across_documents() -> None:
    scores = {"Best.": 10.0, "Close.": 8.0, "Far.": 1.0, "Worst.": 0.0, "Other close.": 7.6}
    pruner = ContextPruner(FunctionReranker(lambda q, t: scores[t]))  # margin 0.25: >= 7.5
    pruned = pruner.prune("q", ["Best. Far. Close.", "Worst.", "Other close."])
    assert [(p.index, p.text) for p in pruned] == [(0, "Best. … Close."), (2, "Other close.")]


def test_results_are_best_first_and_nothing_kept_is_left_out() -> None:
    pruned = ContextPruner(KeywordReranker()).prune(
        "cats purr", ["Dogs bark.", "Cats purr.", "", "Cats sleep."], threshold=1.0
    )
    assert [(p.index, p.score) for p in pruned] == [(1, 2.0), (3, 1.0)]


def test_empty_and_one_sentence_documents() -> None:
    pruner = ContextPruner(KeywordReranker())
    assert pruner.prune("cats", []) == []
    assert pruner.prune("cats", ["", "   "]) == []
    (one,) = pruner.prune("cats", ["Cats purr."])
    assert (one.text, one.spans) == ("Cats purr.", ((0, 10),))
    assert pruner.prune("cats", ["Cats purr."], budget_tokens=1) == []  # 3 tokens do not fit


def test_aprune_equals_prune() -> None:
    documents = [" ".join(SENTENCES[:5]), " ".join(SENTENCES[3:])]
    sync = PRUNER.prune("cats", documents, budget_tokens=30)
    assert asyncio.run(PRUNER.aprune("cats", documents, budget_tokens=30)) == sync


def test_pruned_documents_are_json_safe() -> None:
    (pruned,) = PRUNER.prune("cats", [" ".join(SENTENCES)], budget_tokens=25)
    values = pruned.to_dict()
    assert json.loads(json.dumps(values, allow_nan=False)) == values
    assert type(values["score"]) is float and type(values["tokens"]) is int


def test_select_packs_given_scores_as_prune_does() -> None:
    documents = [" ".join(SENTENCES[:4])]
    scores = PRUNER.sentence_scores("cats", documents)
    assert PRUNER.select(documents, scores, budget_tokens=20) == PRUNER.prune(
        "cats", documents, budget_tokens=20
    )
    with pytest.raises(ValueError, match="scores must hold"):
        PRUNER.select(documents, [[1.0]])


def test_neighbour_context_scores_the_window() -> None:
    seen: list[str] = []
    pruner = ContextPruner(
        FunctionReranker(lambda q, t: seen.append(t) or 0.0), context_sentences=1
    )
    pruner.prune("q", ["Cats purr. Dogs bark. Birds sing."])
    assert seen == [
        "Cats purr. Dogs bark.",
        "Cats purr. Dogs bark. Birds sing.",
        "Dogs bark. Birds sing.",
    ]


# -- arguments and tokens ------------------------------------------------------------------


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="pointwise"):
        ContextPruner(FixedScoreReranker([1.0]))
    with pytest.raises(ValueError, match="budget_tokens must be >= 1"):
        PRUNER.prune("q", ["A."], budget_tokens=0)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        PRUNER.prune("q", ["A."], threshold=float("nan"))
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        PRUNER.prune("q", ["A.", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="margin must be >= 0"):
        ContextPruner(KeywordReranker(), margin=-1)
    with pytest.raises(TypeError, match="tokenizer must be"):
        ContextPruner(KeywordReranker(), tokenizer=3)


def test_a_callable_tokenizer_counts_and_is_checked() -> None:
    pruned = ContextPruner(KeywordReranker(), tokenizer=len).prune("cats", ["Cats purr."])
    assert pruned[0].tokens == len("Cats purr.")
    bad = ContextPruner(KeywordReranker(), tokenizer=lambda text: 1.5)
    with pytest.raises(TypeError, match="tokenizer must return an int"):
        bad.prune("cats", ["Cats purr."])


def test_a_hugging_face_tokenizer_is_the_default_where_the_reranker_has_one() -> None:
    class WithTokenizer(KeywordReranker):
        class tokenizer:  # the two things a Hugging Face tokenizer is recognised by
            @staticmethod
            def convert_tokens_to_ids(tokens: list[str]) -> list[int]:
                return [0] * len(tokens)

            def __new__(cls, text: str, **options: object) -> dict[str, list[int]]:  # type: ignore[misc]
                assert options == {"add_special_tokens": False, "verbose": False}
                return {"input_ids": [0] * len(text.split())}

    (pruned,) = ContextPruner(WithTokenizer()).prune("cats", ["Cats purr loudly."])
    assert (pruned.tokens, pruned.original_tokens) == (3, 3)


# -- eval-context's measuring parts --------------------------------------------------------


def test_claims_know_their_rationale_offsets(tmp_path: Path) -> None:
    rows = [
        {"query_id": 1, "query": "q1", "sentences": ["A a.", "B b.", "C c."], "rationale": [1]},
        {"query_id": 1, "query": "q1", "sentences": ["D."], "rationale": [0]},
        {"query_id": 2, "query": "q2", "sentences": ["E.", "F."], "rationale": []},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = load_claims(path)
    assert first.documents == ["A a. B b. C c.", "D."]
    assert [
        [first.documents[d][a:b] for a, b in spans] for d, spans in enumerate(first.rationale)
    ] == [["B b."], ["D."]]
    assert second.rationale == [[]]
    assert len(load_claims(path, max_claims=1)) == 1


def test_whole_documents_are_cut_at_the_budget() -> None:
    words = len  # one token per character keeps the arithmetic visible
    kept = cut_documents(["aaaa bbbb", "cc dd"], [1, 0], words, 9)
    assert kept.spans == {1: [(0, 5)], 0: [(0, 4)]} and kept.tokens == 9


def test_a_pruner_and_an_adapter_holding_it_pickle() -> None:
    import pickle

    from langchain_rerankkit import RerankKitCompressor

    pruner = ContextPruner(KeywordReranker(), tokenizer=len)
    again = pickle.loads(pickle.dumps(pruner))
    assert again.prune("cats", ["Dogs bark. Cats purr."]) == pruner.prune(
        "cats", ["Dogs bark. Cats purr."]
    )
    compressor = RerankKitCompressor(reranker=KeywordReranker(), prune=pruner, budget_tokens=20)
    assert pickle.loads(pickle.dumps(compressor)).budget_tokens == 20


def test_evaluate_context_compares_the_methods_on_the_rationale(tmp_path: Path) -> None:
    from rerankkit.eval._context import evaluate_context

    row = {"query_id": 1, "query": "cats", "sentences": ["Dogs bark.", "Cats purr."]}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({**row, "rationale": [1]}) + "\n")
    pruner = ContextPruner(KeywordReranker())  # 3 approximate tokens per sentence
    rows = evaluate_context(
        load_claims(path), cross_encoders=[("pruner", pruner)], bi_encoder=None, budgets=[3, 6]
    )
    got = {(r.method, r.budget): (r.recall, r.tokens) for r in rows}
    assert got[("lead-k", 3)] == (0.0, 3.0)  # the first sentence only
    assert got[("pruner", 3)] == (1.0, 3.0)  # the rationale sentence
    assert got[("lead-k", 6)] == got[("pruner", 6)] == (1.0, 6.0)  # both sentences
    assert got[("whole documents by pruner", 3)][0] == 0.0  # the abstract's first 3 tokens
