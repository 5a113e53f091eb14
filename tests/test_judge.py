"""Issue 23: the LLM relevance judge (UMBRELA-structured prompt), its cache, costs and
agreement figures, on scripted LLMs with known answers; ``rerankkit judge``."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import pytest

from rerankkit.cli import main
from rerankkit.errors import TransientLLMError
from rerankkit.eval._judge import (
    UMBRELA_PROMPT,
    RelevanceJudge,
    agreement,
    judge_run,
    parse_grade,
)

PASSAGE = re.compile(r"^Passage: (.*)$", re.MULTILINE)


class GradeFromText:
    """A scripted judge: the grade is the digit after ``g`` in the passage ("doc g3")."""

    def __init__(self, fail_first: int = 0) -> None:
        self.prompts: list[str] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def complete(self, prompt: str) -> str:
        with self.lock:
            self.prompts.append(prompt)
            if self.fail_first:
                self.fail_first -= 1
                raise TransientLLMError("rate limited")
        passage = PASSAGE.search(prompt)
        assert passage is not None
        grade = re.search(r"g(\d)", passage.group(1))
        return f"M: 1\nT: 1\n##final score: {grade.group(1)}" if grade else "no idea"


def test_prompt_and_parsing() -> None:
    assert "{query}" in UMBRELA_PROMPT and "{passage}" in UMBRELA_PROMPT
    assert "##final score" in UMBRELA_PROMPT
    assert parse_grade("##final score: 2") == 2
    assert parse_grade("**Final Score:** 3") == 3
    assert parse_grade("##final score: 7") is None
    assert parse_grade("nothing") is None


def test_judge_caches_per_pair_and_counts_costs(tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    llm = GradeFromText(fail_first=1)
    judge = RelevanceJudge(llm, cache=cache)
    pairs = [("q1", "doc g3"), ("q1", "doc g0"), ("q2", "doc g3"), ("q1", "doc g3"), ("q1", "?")]
    assert judge.grade(pairs) == [3, 0, 3, 3, None]
    # 4 distinct pairs, one retried after a transient error: 5 calls; "?" has no grade
    assert judge.costs.to_dict() | {"prompt_chars": 0, "completion_chars": 0} == {
        "calls": 5,
        "pairs": 3,
        "cached": 0,
        "failed": 1,
        "prompt_chars": 0,
        "completion_chars": 0,
    }
    assert len(cache.read_text().splitlines()) == 3

    again = GradeFromText()
    second = RelevanceJudge(again, cache=cache)
    assert second.grade(pairs[:4]) == [3, 0, 3, 3]
    assert again.prompts == [] and second.costs.cached == 4 and second.costs.calls == 0


def test_agreement_on_known_answers() -> None:
    human = {"q1": {"a": 2, "b": 0, "c": 1, "d": 0}, "q2": {"e": 3, "f": 0}}
    llm = {"q1": {"a": 3, "b": 0, "c": 2, "d": 2}, "q2": {"e": 3, "f": 0}}
    # binary (human >= 1, llm >= 2): human 1,0,1,0,1,0; llm 1,0,1,1,1,0 -> po = 5/6,
    # pe = (3/6 * 4/6) + (3/6 * 2/6) = 0.5, kappa = (5/6 - 1/2) / (1/2) = 2/3
    result = agreement(human, llm)
    assert result["pairs"] == 6
    assert result["kappa_binary"] == pytest.approx(2 / 3)
    # three systems whose order is the same under both qrels: tau = 1
    runs = {
        "good": {"q1": {"a": 3.0, "c": 2.0, "b": 1.0, "d": 0.0}, "q2": {"e": 1.0, "f": 0.0}},
        "mid": {"q1": {"c": 3.0, "a": 2.0, "b": 1.0, "d": 0.0}, "q2": {"e": 1.0, "f": 0.0}},
        "bad": {"q1": {"b": 3.0, "d": 2.0, "c": 1.0, "a": 0.0}, "q2": {"f": 1.0, "e": 0.0}},
    }
    result = agreement(human, llm, runs=runs)
    assert result["kendall_tau"] == pytest.approx(1.0)
    systems = result["systems_ndcg@10"]
    assert systems["good"]["human"] > systems["mid"]["human"] > systems["bad"]["human"]


def test_judge_run_leaves_ungraded_pairs_out() -> None:
    judge = RelevanceJudge(GradeFromText())
    qrels = judge_run(
        judge, {"q": "query"}, {"a": "x g2", "b": "y", "c": "z g0"}, {"q": ["a", "b", "c"]}
    )
    assert qrels == {"q": {"a": 2, "c": 0}}


def test_judge_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    docs = {"d1": "alpha g3", "d2": "beta g0", "d3": "gamma g2", "d4": "delta g0"}
    (data / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": "", "text": v}) for k, v in docs.items())
    )
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "query one"}))
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t1\nq1\td2\t0\n"
    )
    run = tmp_path / "run.trec"
    run.write_text("\n".join(f"q1 Q0 d{i} {i} {5 - i} bm25" for i in range(1, 5)))
    (tmp_path / "fake_judge_llm.py").write_text(
        "import re\n"
        "def llm(prompt):\n"
        "    passage = re.search(r'^Passage: (.*)$', prompt, re.M).group(1)\n"
        "    return '##final score: ' + re.search(r'g(\\d)', passage).group(1)\n"
    )
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "llm.tsv"
    argv = [
        "judge",
        "--data",
        str(data),
        "--run",
        str(run),
        "--llm",
        "fake_judge_llm:llm",
        "--output",
        str(output),
    ]
    try:
        assert main(argv) == 0
    finally:
        sys.modules.pop("fake_judge_llm", None)
    report = json.loads(capsys.readouterr().out)
    assert output.read_text().splitlines() == [
        "query-id\tcorpus-id\tscore",
        "q1\td1\t3",
        "q1\td2\t0",
        "q1\td3\t2",
        "q1\td4\t0",
    ]
    assert report["costs"]["calls"] == 4 and report["agreement"]["pairs"] == 3
    assert report["agreement"]["kappa_binary"] == pytest.approx(1.0)
    assert main([*argv[:-4], "--llm", "nope", "--output", str(output)]) == 2
    # the LLM's qrels feed rerankkit eval (and calibrate) in place of the collection's
    evaluate = ["eval", "--data", str(data), "--run", str(run), "--reranker", "keyword:"]
    assert main([*evaluate, "--qrels", str(output), "--relevance-level", "2"]) == 0
    assert "keyword" in capsys.readouterr().out
