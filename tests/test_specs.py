"""Spec strings -> rerankers: parsing (pure) and building (real classes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerankkit._specs import RerankerSpec, build_reranker, check_spec, parse_spec, spec_kinds
from rerankkit.errors import ModelLoadError
from rerankkit.testing import KeywordReranker


def test_parse_kind_target_and_typed_options() -> None:
    spec = parse_spec(
        "cross-encoder:org/model?max_length=256&dtype=bfloat16&batch_size=8"
        "&normalize=false&revision=none&temperature=0.5"
    )
    assert spec == RerankerSpec(
        kind="cross-encoder",
        target="org/model",
        options={
            "max_length": 256,
            "dtype": "bfloat16",
            "batch_size": 8,
            "normalize": False,
            "revision": None,
            "temperature": 0.5,
        },
        text=spec.text,
    )


def test_only_the_first_colon_separates_the_kind() -> None:
    assert parse_spec(r"cross-encoder:C:\models\ce").target == r"C:\models\ce"
    assert parse_spec("embedding:").target == ""


def test_percent_escapes_allow_reserved_characters_in_values() -> None:
    spec = parse_spec("embedding:/m?query_prefix=query%3A%20&document_prefix=a%26b+c")
    assert spec.options == {"query_prefix": "query: ", "document_prefix": "a&b+c"}


def test_label_is_short_and_keeps_options() -> None:
    assert parse_spec("cross-encoder:/x/y/minilm-ce/").label == "cross-encoder:minilm-ce"
    assert parse_spec("keyword:").label == "keyword"
    assert parse_spec("embedding:/m?max_length=64").label == "embedding:m?max_length=64"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cross-encoder", r"'cross-encoder' must look like KIND:TARGET"),
        ("bm42:/m", r"reranker spec 'bm42:/m': unknown kind 'bm42' \(known: cross-encoder, "),
        ("cross-encoder:", r"reranker spec 'cross-encoder:': cross-encoder needs a model id"),
        ("cross-encoder:?max_length=3", r"needs a model id or path"),
        ("tei:", r"'tei:': tei needs a server URL, e.g. tei:http://host:8080"),
        ("vllm:?model=m", r"vllm needs a server URL, e.g. vllm:http://host:8000\?model=NAME"),
        ("cohere:", r"'cohere:': cohere needs a model name, e.g. cohere:MODEL"),
        ("keyword:/some/model", r"keyword takes no target, got '/some/model'"),
        ("cross-encoder:m?max_length", r"option 'max_length' must be KEY=VALUE"),
        ("cross-encoder:m?a=1&a=2", r"option 'a' given twice"),
        ("cross-encoder:m?1x=2", r"bad option name '1x'"),
    ],
)
def test_bad_specs_are_rejected_with_the_spec_in_the_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec(text)


def test_non_string_spec_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="reranker spec must be a str, got int"):
        parse_spec(3)  # type: ignore[arg-type]


def test_kinds_are_described() -> None:
    kinds = spec_kinds()
    assert {"cross-encoder", "embedding", "keyword"} <= set(kinds)
    assert all(isinstance(text, str) and text for text in kinds.values())


def test_build_keyword_fake_and_reject_unknown_options() -> None:
    reranker = build_reranker("keyword:")
    assert isinstance(reranker, KeywordReranker)
    assert reranker.score("red apple", ["apple", "red apple", "pear"]) == [1.0, 2.0, 0.0]
    message = r"'keyword:\?x=1': unknown option x for KeywordReranker \(accepted: calibration\)"
    with pytest.raises(ValueError, match=message):
        build_reranker("keyword:?x=1")


def test_none_for_an_option_that_cannot_be_none_is_refused_before_loading() -> None:
    """``activation=none`` reads as ``None``; CrossEncoderReranker needs a str there, so the
    spec check says so (and how to write the text) instead of the constructor after a first
    stage. An option that may be None (``max_length``) still passes."""
    with pytest.raises(
        ValueError, match=r'activation: str\); for the text none write activation="none"'
    ):
        check_spec("cross-encoder:no-such-model?activation=none")
    with pytest.raises(ValueError, match=r"batch_size=none reads as None.*\(batch_size: int\)$"):
        check_spec("cross-encoder:no-such-model?batch_size=none")
    assert check_spec('cross-encoder:m?activation="none"&max_length=none').options == {
        "activation": "none",
        "max_length": None,
    }


def test_an_option_spelt_the_old_way_is_refused_naming_the_new_one(monkeypatch) -> None:
    """Where the kind's class takes the new name (one vocabulary, issue 21), the old one is
    refused naming it; where it takes neither, the old name is just an unknown option."""
    import rerankkit._specs

    assert rerankkit._specs._RENAMED_OPTIONS["max_in_flight"] == "max_concurrency"
    with pytest.raises(ValueError, match=r"'keyword:\?top_k=3': unknown option top_k for Keyw"):
        check_spec("keyword:?top_k=3")  # KeywordReranker takes no top_n either
    monkeypatch.setitem(rerankkit._specs._RENAMED_OPTIONS, "batchsize", "batch_size")
    with pytest.raises(ValueError, match=r"^reranker spec 'cross-encoder:m\?batchsize=4': option "
                       r"batchsize was renamed batch_size$"):  # fmt: skip
        check_spec("cross-encoder:m?batchsize=4")


def test_remote_spec_options_are_checked_through_the_base_class() -> None:
    """A remote kind forwards its connection options to RemoteReranker through ``**kwargs``;
    a misspelt one is still named, with the options the base class accepts."""
    pytest.importorskip("httpx")
    message = r"'tei:http://127\.0\.0\.1:9\?timeot=3': unknown option timeot for TEIReranker "
    with pytest.raises(ValueError, match=message + r"\(accepted: .*max_retries.*timeout"):
        build_reranker("tei:http://127.0.0.1:9?timeot=3")
    reranker = build_reranker("tei:http://127.0.0.1:9?timeout=3&truncate=true")
    assert type(reranker).__name__ == "TEIReranker"


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("cross-encoder:/models/ce?model_name_or_path=/other", "model_name_or_path"),
        ("embedding:?model_name_or_path=/other", "model_name_or_path"),
        ("cohere:rerank-v3.5?model=rerank-v2", "model"),
        ("tei:http://127.0.0.1:9?base_url=http://127.0.0.1:8", "base_url"),
    ],
)
def test_an_option_repeating_the_target_is_refused_before_loading(text: str, option: str) -> None:
    """check_spec passes only what build_reranker can build: the target's own parameter as an
    option would be a TypeError ("multiple values") after, e.g., an eval's first stage."""
    if not text.startswith(("cross-encoder", "embedding")):
        pytest.importorskip("httpx")
    with pytest.raises(ValueError, match=rf"option {option} is the target; give it after"):
        check_spec(text)


@pytest.mark.parametrize("name", ["API_KEY", "apikey", "api-key", "Api_Key", "token"])
def test_a_misspelt_api_key_is_hidden_in_the_message_that_refuses_it(name: str) -> None:
    pytest.importorskip("httpx")
    with pytest.raises(ValueError) as error:
        check_spec(f"cohere:rerank-v3.5?{name}=sk-secret-1&timeout=5")
    assert "sk-secret-1" not in str(error.value)
    assert f"{name}=***&timeout=5" in str(error.value)


def test_a_quoted_api_key_loses_its_quotes_like_any_value() -> None:
    spec = parse_spec('cohere:rerank-v3.5?api_key="sk-1"&model_x="none"')
    assert spec.options == {"api_key": "sk-1", "model_x": "none"}
    assert "sk-1" not in repr(spec) and "sk-1" not in spec.text


def test_rerank_command_refuses_a_bad_option_before_reading_the_documents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rerankkit.cli._commands import main

    argv = ["rerank", "--query", "q", "--docs", "/no/such/docs.jsonl", "--reranker", "keyword:?x=1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown option x for KeywordReranker" in err, err


@pytest.mark.slow
def test_build_cross_encoder_passes_options(tiny_cross_encoder: Path) -> None:
    pytest.importorskip("torch")
    from rerankkit import CrossEncoderReranker

    spec = f"cross-encoder:{tiny_cross_encoder}?max_length=64&batch_size=4"
    reranker = build_reranker(spec)
    assert isinstance(reranker, CrossEncoderReranker)
    direct = CrossEncoderReranker(str(tiny_cross_encoder), max_length=64, batch_size=4)
    docs = ["a short passage", "another passage about cats " * 20]
    assert reranker.score("cats", docs) == pytest.approx(direct.score("cats", docs), abs=1e-6)
    with pytest.raises(ValueError, match=r"unknown option max_lenght for CrossEncoderReranker"):
        build_reranker(f"cross-encoder:{tiny_cross_encoder}?max_lenght=64")


@pytest.mark.slow
def test_a_model_that_fails_to_load_names_the_spec(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    spec = f"cross-encoder:{tmp_path / 'no-such-model'}"
    with pytest.raises(ModelLoadError, match=rf"reranker spec '{spec}'") as raised:
        build_reranker(spec)
    assert isinstance(raised.value, OSError) and isinstance(raised.value.__cause__, OSError)
