"""``rerankkit eval-context`` end to end on toy files, in both modes: the claims' evidence
abstracts, and (``--beir``) the BM25 top-k abstracts of a toy BEIR corpus.

The keyword reranker (``keyword:``, shared query words) and the approximate token count make
every expected number countable by hand: a short word or a full stop is one token, so
``"Dogs bark at mail."`` is 5 tokens, ``"Stars shine far."`` 4 and the title ``"Pet sounds."`` 3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rerankkit.cli import main

CLAIMS = [  # (query id, claim, doc id, title, sentences, rationale)
    ("1", "cats purr when happy", "d1", "Pet sounds.",
     ["Dogs bark at mail.", "Birds sing at dawn.", "Cats purr when happy."], [2]),
    ("2", "fish swim in cold lakes", "d2", "Nature notes.",
     ["Fish swim in lakes.", "Trees grow very tall.", "Rocks stay quite still."], [0]),
    ("3", "moon orbits earth", "d4", "",
     ["Stars shine far.", "Comets move slow."], [1]),
]  # fmt: skip
OTHER_DOCUMENTS = {  # BM25 finds d3 for claim 1 and d5, d6 (not d4) for claim 3
    "d3": "Happy cats purr loudly.",
    "d5": "The moon orbits the earth.",
    "d6": "Earth has one moon.",
}


def _write_files(tmp_path: Path) -> tuple[Path, Path]:
    rationales = tmp_path / "rationales.jsonl"
    rationales.write_text(
        "".join(
            json.dumps(
                {"query_id": q, "query": c, "doc_id": d, "title": t, "sentences": s}
                | {"rationale": r, "label": "SUPPORT"}
            )
            + "\n"
            for q, c, d, t, s, r in CLAIMS
        )
    )
    beir = tmp_path / "beir"
    beir.mkdir(exist_ok=True)
    corpus = [{"_id": d, "title": t, "text": " ".join(s)} for _, _, d, t, s, _ in CLAIMS]
    corpus += [{"_id": d, "title": "", "text": text} for d, text in OTHER_DOCUMENTS.items()]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    return rationales, beir


def _eval_context(tmp_path: Path, *options: str) -> dict[str, Any]:
    rationales, _ = _write_files(tmp_path)
    output = tmp_path / "out"
    argv = ["eval-context", "--data", str(rationales), "--reranker", "keyword:"]
    assert main([*argv, "--bi-encoder", "none", *options, "--output", str(output)]) == 0
    assert (output / "report.md").is_file() and (output / "report.png").stat().st_size > 0
    report: dict[str, Any] = json.loads((output / "report.json").read_text())
    return report


def _recall(report: dict[str, Any]) -> dict[tuple[str, int], float]:
    return {
        (row["method"].split(" ")[0], row["budget"]): row["recall"]
        for row in report["rows"]
        if row["budget"] is not None
    }


def test_evidence_mode_counts_the_rationale_sentences_kept(tmp_path: Path) -> None:
    report = _eval_context(tmp_path, "--budget", "5", "--budget", "64")
    recall = _recall(report)
    # budget 5 holds one sentence per claim. lead-k: the first (claim 2's rationale only);
    # the pruner: the best (claims 1 and 2; claim 3 shares no word, so its first sentence);
    # whole documents: a 5-token prefix, which covers no more than the first sentence.
    assert recall[("lead-k", 5)] == pytest.approx(1 / 3)
    assert recall[("pruner", 5)] == pytest.approx(2 / 3)
    assert recall[("whole", 5)] == pytest.approx(1 / 3)
    # 64 holds every abstract (15, 15 and 8 tokens)
    assert {recall[(method, 64)] for method in ("lead-k", "pruner", "whole")} == {1.0}
    assert report["retrieval"] is None


def test_beir_mode_packs_the_retrieved_abstracts_and_counts_unretrieved_as_missed(
    tmp_path: Path,
) -> None:
    _, beir = _write_files(tmp_path)
    report = _eval_context(tmp_path, "--beir", str(beir), "--top-k", "2")
    # claim 3's evidence abstract d4 shares no word with it: never retrieved, its rationale
    # sentence is missed by every method; everything retrieved fits the default budgets
    assert report["retrieval"] | {"note": ""} == {
        "top_k": 2,
        "evidence_abstracts": 3,
        "retrieved_abstracts": 2,
        "rationale_sentences": 3,
        "retrieved_sentences": 2,
        "note": "",
    }
    recall = _recall(report)
    assert {budget for _, budget in recall} == {128, 256, 512}
    assert list(recall.values()) == [pytest.approx(2 / 3)] * len(recall)


def test_beir_mode_packs_one_budget_across_the_retrieved_abstracts(tmp_path: Path) -> None:
    _, beir = _write_files(tmp_path)
    recall = _recall(_eval_context(tmp_path, "--beir", str(beir), "--top-k", "2", "--budget", "5"))
    # 5 tokens: the pruner keeps each claim's best sentence, the rationale for claims 1 and 2
    # (the title prefix of a retrieved evidence abstract shifts its rationale offsets);
    # lead-k and whole documents start with the titles, which hold no rationale
    assert recall[("pruner", 5)] == pytest.approx(2 / 3)
    assert recall[("lead-k", 5)] == recall[("whole", 5)] == 0.0


def test_beir_mode_refuses_rationales_from_another_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rationales, beir = _write_files(tmp_path)
    (beir / "corpus.jsonl").write_text(json.dumps({"_id": "x", "text": "Other."}) + "\n")
    argv = ["eval-context", "--data", str(rationales), "--reranker", "keyword:"]
    assert main([*argv, "--beir", str(beir)]) == 2
    assert "3 of 3 rationale doc ids are not in" in capsys.readouterr().err


def test_evidence_sets_of_one_abstract_make_one_document(tmp_path: Path) -> None:
    from rerankkit.eval._context import load_claims

    row = {"query_id": "1", "query": "q", "doc_id": "d1", "sentences": ["A a.", "B b.", "C c."]}
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(row | {"rationale": r}) + "\n" for r in ([2], [0, 2])))
    (claim,) = load_claims(path)
    assert claim.documents == ["A a. B b. C c."]
    assert claim.rationale == [[(0, 4), (10, 14)]]


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--budget", "0"], "argument --budget"),
        (["--margin", "-1"], "argument --margin"),
        (["--context-sentences", "-1"], "argument --context-sentences"),
        (["--tokenizer", "/no/such/tokenizer"], "cannot load tokenizer '/no/such/tokenizer'"),
    ],
)
def test_bad_options_are_usage_errors_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], named: str
) -> None:
    rationales, _ = _write_files(tmp_path)
    argv = ["eval-context", "--data", str(rationales), "--reranker", "keyword:"]
    assert main([*argv, "--bi-encoder", "none", *option]) == 2
    assert named in capsys.readouterr().err


def test_a_file_in_another_format_names_the_missing_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"  # a BEIR corpus passed where rationales belong
    corpus.write_text(json.dumps({"_id": "d1", "title": "", "text": "Cats purr."}) + "\n")
    assert main(["eval-context", "--data", str(corpus), "--reranker", "keyword:"]) == 2
    assert "corpus.jsonl:1: no field 'query_id' (a rationales line has" in capsys.readouterr().err
