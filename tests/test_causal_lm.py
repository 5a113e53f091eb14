"""CausalLMReranker on a tiny random Llama saved with save_pretrained (real loading code)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from rerankkit import CausalLMReranker

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
QUERY = "what is the boiling point of water"
DOCS = [
    "water boils at one hundred degrees celsius at sea level",
    "the cat sat on the mat",
    "at high altitude the boiling point of water is lower because air pressure is lower "
    "and so it boils at a lower temperature than at sea level " * 3,
    "boiling",
    "paris is the capital of france and its largest city",
]


def _spread_answers(model: object, tokenizer: object) -> None:
    """Spread the answer logits so P(yes) differs between documents."""
    model.lm_head.weight.normal_(0.0, 1.0)  # type: ignore[attr-defined]


def _build(path: Path, *, chat: bool) -> Path:
    from conftest import build_tiny_llama

    template = CHAT_TEMPLATE if chat else None
    return build_tiny_llama(path, chat_template=template, edit_weights=_spread_answers)


@pytest.fixture(scope="module")
def plain_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("tiny-lm"), chat=False)


@pytest.fixture(scope="module")
def chat_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("tiny-chat-lm"), chat=True)


def _direct_p_yes(path: Path, text: str, yes: str, no: str) -> float:
    """P(yes) computed independently: whole prompt tokenized at once, unpadded forward."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1]
    yes_id = tokenizer.convert_tokens_to_ids(yes)
    no_id = tokenizer.convert_tokens_to_ids(no)
    return float(torch.softmax(logits[[no_id, yes_id]], dim=-1)[1])


def test_scores_are_p_yes_of_an_independent_forward(plain_lm: Path) -> None:
    reranker = CausalLMReranker(plain_lm, batch_size=3)
    scores = reranker.score(QUERY, DOCS)
    expected = [_direct_p_yes(plain_lm, reranker.render(QUERY, d), "yes", "no") for d in DOCS]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in scores)
    assert len(set(scores)) == len(scores)  # the tiny model does tell documents apart


def test_score_many_batches_across_queries_with_the_per_query_scores(plain_lm: Path) -> None:
    reranker = CausalLMReranker(plain_lm, batch_size=4)
    assert reranker.pointwise
    groups = [(QUERY, DOCS), ("who wrote hamlet", []), ("who wrote hamlet", DOCS[::-1])]
    many = reranker.score_many(groups)
    assert [len(scores) for scores in many] == [len(DOCS), 0, len(DOCS)]
    for (query, docs), scores in zip(groups, many, strict=True):
        expected = [_direct_p_yes(plain_lm, reranker.render(query, d), "yes", "no") for d in docs]
        assert scores == pytest.approx(expected, abs=1e-5)


def test_left_padded_batches_score_like_single_documents(plain_lm: Path) -> None:
    batched = CausalLMReranker(plain_lm, batch_size=len(DOCS)).score(QUERY, DOCS)
    alone = CausalLMReranker(plain_lm, batch_size=1).score(QUERY, DOCS)
    assert batched == pytest.approx(alone, abs=1e-5)
    ranked = CausalLMReranker(plain_lm, batch_size=2).rerank(QUERY, DOCS)
    assert sorted(r.index for r in ranked) == list(range(len(DOCS)))
    assert [r.score for r in ranked] == sorted(batched, reverse=True)


async def test_async_matches_sync(plain_lm: Path) -> None:
    reranker = CausalLMReranker(plain_lm)
    assert await reranker.ascore(QUERY, DOCS) == pytest.approx(reranker.score(QUERY, DOCS))


def test_document_is_truncated_first_and_answer_slot_kept(plain_lm: Path) -> None:
    fixed = len(CausalLMReranker(plain_lm).build_inputs(QUERY, [""])[0])
    limit = fixed + 20
    reranker = CausalLMReranker(plain_lm, max_length=limit)
    long_doc = "the kettle whistles when the water boils " * 100
    (row,) = reranker.build_inputs(QUERY, [long_doc])
    tokenizer = reranker.tokenizer
    before, after = reranker.render(QUERY, "\x00").split("\x00")
    head = tokenizer(before, add_special_tokens=False)["input_ids"]
    tail = tokenizer(after, add_special_tokens=False)["input_ids"]
    assert len(row) == limit
    assert row[: len(head)] == head  # the whole query survives
    assert row[-len(tail) :] == tail  # and so does the answer slot
    doc_ids = tokenizer(long_doc, add_special_tokens=False)["input_ids"]
    assert row[len(head) : -len(tail)] == doc_ids[:20]
    assert 0.0 < reranker.score(QUERY, [long_doc])[0] < 1.0


def test_overlong_query_is_cut_only_after_the_document(
    plain_lm: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fixed = len(CausalLMReranker(plain_lm).build_inputs("", [""])[0])
    limit = fixed + 30
    reranker = CausalLMReranker(plain_lm, max_length=limit)
    query = "boiling point " * 200
    with caplog.at_level(logging.WARNING, logger="rerankkit.backends._causal_lm"):
        rows = reranker.build_inputs(query, ["short doc", "another document"])
    assert all(len(r) <= limit for r in rows)
    doc_ids = reranker.tokenizer("short doc", add_special_tokens=False)["input_ids"]
    tail = reranker.tokenizer(
        reranker.render("q", "\x00").split("\x00")[1], add_special_tokens=False
    )["input_ids"]
    assert rows[0][-len(tail) - len(doc_ids) : -len(tail)] == doc_ids
    assert "query truncated" in caplog.text


def test_chat_template_renders_system_and_user_turns(chat_lm: Path) -> None:
    reranker = CausalLMReranker(chat_lm, system_prompt="judge relevance")
    text = reranker.render("q?", "some passage")
    assert text.startswith("<|system|> judge relevance\n<|user|> ")
    assert text.endswith("<Document>: some passage\n<|assistant|> ")
    assert reranker.yes_token == "yes"
    scores = reranker.score("q?", DOCS[:3])
    expected = [_direct_p_yes(chat_lm, reranker.render("q?", d), "yes", "no") for d in DOCS[:3]]
    assert scores == pytest.approx(expected, abs=1e-5)


def test_custom_prompt_and_answer_tokens(plain_lm: Path) -> None:
    reranker = CausalLMReranker(
        plain_lm,
        prompt="Q: {query}\nD: {document}",
        system_prompt=None,
        yes_token="true",
        no_token="false",
    )
    assert reranker.render("a", "b").startswith("Q: a\nD: b")
    (score,) = reranker.score("a", ["b"])
    expected = _direct_p_yes(plain_lm, reranker.render("a", "b"), "true", "false")
    assert score == pytest.approx(expected, abs=1e-5)


def test_bad_configuration_is_rejected(plain_lm: Path) -> None:
    with pytest.raises(ValueError, match="yes_token"):
        CausalLMReranker(plain_lm, yes_token="yes indeed")
    with pytest.raises(ValueError, match="document"):
        CausalLMReranker(plain_lm, prompt="{query} only")
    with pytest.raises(ValueError, match="chat template"):
        CausalLMReranker(plain_lm, use_chat_template=True)
    with pytest.raises(ValueError, match="batch_size"):
        CausalLMReranker(plain_lm, batch_size=0)


def test_missing_model_fails_fast_offline(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no-such-org/no-such-reranker"):
        CausalLMReranker("no-such-org/no-such-reranker")


def test_empty_input_and_nan_free(plain_lm: Path) -> None:
    reranker = CausalLMReranker(plain_lm)
    assert reranker.rerank(QUERY, []) == []
    assert all(not math.isnan(s) for s in reranker.score(QUERY, ["", " "]))
