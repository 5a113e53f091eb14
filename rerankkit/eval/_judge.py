"""An LLM relevance judge: graded qrels (0-3) where there are no human labels.

The prompt follows UMBRELA (Upadhyay, Pradeep, Thakur, Craswell & Lin 2024, "UMBRELA: UMbrela
is the (Open-Source Reproduction of the) Bing RELevance Assessor", arXiv:2406.06519), the
zero-shot "Bing" prompt of Thomas et al. (2024) whose LLM labels reproduced the TREC DL
system rankings: the four grades, the instruction that separates them, the decomposition
into intent, match (M), trustworthiness (T) and overall score (O), and the ``##final score:``
answer line. The wording here is ours (same structure and grade definitions); pass the
published text as ``prompt=`` (placeholders ``{query}`` and ``{passage}``) to reproduce the
paper exactly.

Grades: 0 = nothing to do with the query, 1 = related but does not answer it, 2 = some
answer, unclear or among other material, 3 = dedicated to the query with the exact answer.

Calls go through :func:`rerankkit.llm._calls.complete_all` (timeout, retries and concurrency
of a :class:`rerankkit.RetryPolicy`). Each grade is cached per (query text, document text) in
a JSONL file, so a second run, or another run over the same documents, calls nothing again.
A call that fails for good or an answer without a grade leaves that pair unjudged (counted;
it is not written, so a later run retries it).

Example:
    >>> from rerankkit.testing import ScriptedLLM
    >>> judge = RelevanceJudge(ScriptedLLM(["##final score: 3", "##final score: 0"]))
    >>> query = "capital of France"
    >>> judge.grade([(query, "Paris is the capital."), (query, "Cats sleep.")])
    [3, 0]
    >>> judge.costs.calls, judge.costs.cached
    (2, 0)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rerankkit._retry import RetryPolicy
from rerankkit.llm._calls import complete_all, run_sync
from rerankkit.llm._parsing import parse_rating
from rerankkit.llm._protocol import Completion, CompletionLLM, FunctionLLM, to_completion

logger = logging.getLogger(__name__)

UMBRELA_PROMPT = """\
Given a query and a passage, give the passage a relevance score, an integer from 0 to 3:
0 = the passage has nothing to do with the query,
1 = the passage seems related to the query but does not answer it,
2 = the passage has some answer for the query, but the answer may be a bit unclear, or hidden \
among extraneous information,
3 = the passage is dedicated to the query and contains the exact answer.

Important instruction: give 1 if the passage is somewhat related to the topic but not \
completely, 2 if the passage presents something very important about the entire topic but \
also has some extra information, and 3 if the passage refers only and entirely to the topic. \
If none of these applies, give 0.

Query: {query}
Passage: {passage}

Split this problem into steps:
Consider the underlying intent of the search.
Measure how well the content matches a likely intent of the query (M).
Measure how trustworthy the passage is (T).
Consider the aspects above and the relative importance of each, and decide on a final score \
(O). The final score must be an integer only.
Do not write any code. Answer in the format ##final score: score, without any reasoning."""
"""The UMBRELA-structured judging prompt (see the module docstring); ``{query}``, ``{passage}``."""

GRADES = (0, 1, 2, 3)
_FINAL = re.compile(r"final\s*score\s*[:=]?\s*\**\s*([0-3])\b", re.IGNORECASE)


def parse_grade(text: str) -> int | None:
    """The grade 0-3 of a judge's answer: the ``##final score: N`` line, else the first
    grade a rating parser finds; ``None`` when there is none.

    Example:
        >>> parse_grade("M: 2, T: 1\\n##final score: 2"), parse_grade("I'd say 3.")
        (2, 3)
        >>> parse_grade("?")
    """
    found = _FINAL.findall(text)
    if found:
        return int(found[-1])
    rating = parse_rating(text, 0, 3)
    return None if rating is None or rating != int(rating) else int(rating)


@dataclass
class JudgeCosts:
    """What judging cost: LLM ``calls`` (attempts, retries included), ``pairs`` graded by
    the LLM, ``cached`` (answered from the cache), ``failed`` (no grade after retries or an
    answer without one), and characters sent and received (token counts depend on the
    tokenizer: about 4 characters a token for English)."""

    calls: int = 0
    pairs: int = 0
    cached: int = 0
    failed: int = 0
    prompt_chars: int = 0
    completion_chars: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class _Counting:
    """The LLM, counting every attempt (for retries) and the characters both ways."""

    def __init__(self, llm: CompletionLLM, costs: JudgeCosts) -> None:
        self.llm, self.costs, self._lock = llm, costs, threading.Lock()

    def complete(self, prompt: str) -> Completion:
        with self._lock:
            self.costs.calls += 1
            self.costs.prompt_chars += len(prompt)
        completion = to_completion(self.llm.complete(prompt))
        with self._lock:
            self.costs.completion_chars += len(completion.text)
        return completion


def pair_key(query: str, document: str) -> str:
    """The cache key of a (query, document) pair: a SHA-256 of both texts.

    Example:
        >>> pair_key("q", "d") == pair_key("q", "d") != pair_key("q", "d2")
        True
    """
    return hashlib.sha256(json.dumps([query, document]).encode("utf-8")).hexdigest()


class RelevanceJudge:
    """Grades (query, document) pairs 0-3 with an LLM and the UMBRELA-structured prompt.

    Args:
        llm: An object with ``complete(prompt)`` or a callable ``prompt -> str``.
        prompt: The template (``{query}``, ``{passage}``); default :data:`UMBRELA_PROMPT`.
        retry: Timeout, retries and concurrency of the calls (default ``RetryPolicy()``).
        cache: A JSONL file of earlier grades (read if it exists, appended to); ``None``
            keeps them in memory only.

    Raises:
        ValueError: ``prompt`` lacks ``{query}`` or ``{passage}``.
    """

    def __init__(
        self,
        llm: CompletionLLM | Callable[[str], str | Completion],
        *,
        prompt: str = UMBRELA_PROMPT,
        retry: RetryPolicy | None = None,
        cache: str | Path | None = None,
    ) -> None:
        for field in ("{query}", "{passage}"):
            if field not in prompt:
                raise ValueError(f"prompt must contain {field}")
        base = llm if hasattr(llm, "complete") else FunctionLLM(llm)
        self.costs = JudgeCosts()
        self.llm = _Counting(base, self.costs)
        self.prompt = prompt
        self.retry = retry or RetryPolicy()
        self.cache_path = Path(cache) if cache is not None else None
        self._grades: dict[str, int] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self._grades[entry["key"]] = int(entry["grade"])

    def grade(self, pairs: Sequence[tuple[str, str]]) -> list[int | None]:
        """The grade of each ``(query, document)`` pair, in order; ``None`` where the LLM
        gave none (failed after retries, or no grade in its answer)."""
        keys = [pair_key(query, document) for query, document in pairs]
        todo: dict[str, tuple[str, str]] = {}
        for key, pair in zip(keys, pairs, strict=True):
            if key not in self._grades and key not in todo:
                todo[key] = pair
        self.costs.cached += sum(1 for key in keys if key in self._grades)
        prompts = [self.prompt.format(query=q, passage=d) for q, d in todo.values()]
        answers = run_sync(lambda: complete_all(self.llm, prompts, self.retry, use_async=False))
        fresh: list[dict[str, Any]] = []
        for key, answer in zip(todo, answers, strict=True):
            if isinstance(answer, Exception):
                logger.warning("judge call failed for good: %s", answer)
                self.costs.failed += 1
                continue
            grade = parse_grade(answer.text)
            if grade is None:
                self.costs.failed += 1
                continue
            self.costs.pairs += 1
            self._grades[key] = grade
            fresh.append({"key": key, "grade": grade})
        if fresh and self.cache_path is not None:
            with self.cache_path.open("a", encoding="utf-8") as file:
                file.writelines(json.dumps(entry) + "\n" for entry in fresh)
        return [self._grades.get(key) for key in keys]


def judge_run(
    judge: RelevanceJudge,
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    candidates: Mapping[str, Sequence[str]],
) -> dict[str, dict[str, int]]:
    """Qrels ``{qid: {docid: grade}}`` for each query's candidate documents (unjudged pairs
    left out)."""
    pairs = [(qid, doc) for qid, docs in candidates.items() for doc in docs]
    grades = judge.grade([(queries[qid], corpus[doc]) for qid, doc in pairs])
    qrels: dict[str, dict[str, int]] = {}
    for (qid, doc), grade in zip(pairs, grades, strict=True):
        if grade is not None:
            qrels.setdefault(qid, {})[doc] = grade
    return qrels


def write_qrels(qrels: Mapping[str, Mapping[str, int]], path: str | Path) -> Path:
    """Write BEIR qrels (``query-id<TAB>corpus-id<TAB>score`` with the header line), which
    ``rerankkit eval --qrels`` and ``rerankkit calibrate --qrels`` read."""
    path = Path(path)
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [
        f"{qid}\t{doc}\t{grade}" for qid, docs in qrels.items() for doc, grade in docs.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def agreement(
    human: Mapping[str, Mapping[str, int]],
    llm: Mapping[str, Mapping[str, int]],
    *,
    human_level: int = 1,
    llm_level: int = 2,
    runs: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> dict[str, Any]:
    """How the LLM's judgments agree with human ones, on the pairs both judged.

    * ``kappa_binary``: Cohen's kappa (scikit-learn ``cohen_kappa_score``) of relevant (human
      grade >= ``human_level``) against relevant (LLM grade >= ``llm_level``, UMBRELA's
      "some answer or better").
    * ``kappa_graded``: Cohen's kappa of the grades themselves (meaningful only when both
      use 0-3, as TREC DL does).
    * With ``runs`` (at least 2 systems): each system's mean nDCG@10 under either qrels, and
      Kendall's tau (scipy ``kendalltau``, tau-b) between the two system rankings: the
      figure UMBRELA reports.

    Example:
        >>> human = {"q": {"a": 2, "b": 0, "c": 1, "d": 0}}
        >>> agreement(human, {"q": {"a": 3, "b": 0, "c": 2, "d": 1}})["kappa_binary"]
        1.0
    """
    from rerankkit._optional import require

    metrics = require("sklearn.metrics", "eval")
    pairs = [(q, d) for q, docs in llm.items() for d in docs if d in human.get(q, {})]
    result: dict[str, Any] = {"pairs": len(pairs)}
    if pairs:
        h = [human[q][d] for q, d in pairs]
        m = [llm[q][d] for q, d in pairs]
        binary = metrics.cohen_kappa_score(
            [int(g >= human_level) for g in h], [int(g >= llm_level) for g in m]
        )
        result["kappa_binary"] = _finite(binary)
        result["kappa_graded"] = _finite(metrics.cohen_kappa_score(h, m))
    if runs is not None and len(runs) >= 2:
        from rerankkit.eval._metrics import per_query_metrics

        stats = require("scipy.stats", "eval")
        systems: dict[str, dict[str, float]] = {}
        for name, run in runs.items():
            systems[name] = {}
            for label, qrels in (("human", human), ("llm", llm)):
                ids = [q for q in run if q in qrels]
                values = per_query_metrics(qrels, run, {"n": "nDCG@10"}, ids)["n"]
                systems[name][label] = sum(values.values()) / len(ids) if ids else 0.0
        tau = stats.kendalltau(
            [s["human"] for s in systems.values()], [s["llm"] for s in systems.values()]
        ).statistic
        result["systems_ndcg@10"] = systems
        result["kendall_tau"] = _finite(tau)
    return result


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if value == value else None  # NaN (a constant side): no agreement figure
