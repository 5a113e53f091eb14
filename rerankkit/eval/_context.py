"""``rerankkit eval-context``: how much rationale evidence each context method keeps within a
token budget, on SciFact-rationales-style data (``../shared/data/scifact-rationales``).

One unit is a claim with its evidence abstracts (the abstract's annotated sentences joined by
single spaces, so each annotated sentence has known character offsets). A method returns kept
character spans per abstract; a rationale sentence counts as kept when one kept span covers it
entirely (independent of how the method split sentences). Methods, each at every budget:

- ``lead-k``: the first sentences, round-robin over the abstracts (sentence 1 of each, then 2,
  ...) while the budget holds;
- ``bi-encoder``: :class:`rerankkit.ContextPruner` over a bi-encoder's cosine scores (what
  LlamaIndex's ``SentenceEmbeddingOptimizer`` does, packed into the budget);
- ``cross-encoder``: :class:`rerankkit.ContextPruner` over the cross-encoder's sentence scores
  (``±k``: scored with ``k`` neighbours each side);
- ``whole documents``: the abstracts reranked by the same cross-encoder, concatenated best
  first and cut at the budget (the last one mid-text).

End-to-end mode (``--beir DIR``): each claim's abstracts are instead the BM25 top-k of the BEIR
corpus (:func:`retrieve_claims`), and every method packs ONE budget across them; recall stays
over ALL the claim's rationale sentences, so those of an evidence abstract BM25 did not retrieve
count as missed.

Every method counts tokens with the same tokenizer (the first cross-encoder's, or
``--tokenizer``). Sentences are scored once per claim and packed at every budget; ``pairs/s``
is sentence (or abstract) pairs scored per second of scoring.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankkit._optional import require
from rerankkit.context import ContextPruner, PrunedDocument, split_sentences
from rerankkit.errors import DatasetError
from rerankkit.eval._datasets import read_lines

logger = logging.getLogger(__name__)

Span = tuple[int, int]


@dataclass(frozen=True)
class Claim:
    """A claim, its abstracts (as text) and the rationale sentences' spans in them."""

    query: str
    documents: list[str]
    rationale: list[list[Span]]
    """Per abstract, the ``(start, end)`` of each rationale sentence in its text."""
    doc_ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    query_id: str = ""
    missed: int = 0
    """Rationale sentences of abstracts not among ``documents`` (the first stage did not
    retrieve them): counted as not kept."""


def load_claims(path: str | Path, *, max_claims: int | None = None, seed: int = 0) -> list[Claim]:
    """Claims of a rationales JSONL file (``query_id``, ``query``, ``sentences``,
    ``rationale`` per line; ``doc_id`` and ``title`` as well for :func:`retrieve_claims`),
    abstracts in file order; ``max_claims``: a seeded sample. Lines of one claim with the same
    ``doc_id`` (SciFact lists each evidence SET of an abstract on its own line: 957 lines, 564
    claim-abstract pairs) make one abstract with the union of their rationale sentences, so an
    abstract is never packed twice.

    Raises:
        DatasetError: A missing file, bad JSON or a missing/ill-typed field (line named).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no rationales file at {path}")
    grouped: dict[str, Claim] = {}
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            qid, query = str(row["query_id"]), row["query"]
            sentences, rationale = row["sentences"], row["rationale"]
            doc_id, title = str(row.get("doc_id", "")), row.get("title") or ""
            if not all(isinstance(s, str) for s in (query, title, *sentences)):
                raise TypeError("query, title and sentences must be strings")
            chosen = {int(i) for i in rationale}
        except KeyError as error:
            raise DatasetError(
                f"{path}:{number}: no field {error} (a rationales line has query_id, query, "
                "sentences and rationale; doc_id and title too for --beir)"
            ) from None
        except (ValueError, TypeError) as error:
            raise DatasetError(f"{path}:{number}: {type(error).__name__}: {error}") from None
        claim = grouped.setdefault(qid, Claim(query, [], [], query_id=qid))
        text, spans, at = "", [], 0
        for i, sentence in enumerate(sentences):
            text += (" " if i else "") + sentence
            at = len(text) - len(sentence)
            if i in chosen:
                spans.append((at, len(text)))
        if doc_id and doc_id in claim.doc_ids:  # another evidence set of the same abstract
            d = claim.doc_ids.index(doc_id)
            if claim.documents[d] != text:
                raise DatasetError(f"{path}:{number}: abstract {doc_id} differs from line above")
            claim.rationale[d] = sorted(set(claim.rationale[d]) | set(spans))
            continue
        claim.documents.append(text)
        claim.rationale.append(spans)
        claim.doc_ids.append(doc_id)
        claim.titles.append(title.strip())
    claims = list(grouped.values())
    if max_claims is not None and max_claims < len(claims):
        picked = sorted(random.Random(seed).sample(range(len(claims)), max_claims))
        claims = [claims[i] for i in picked]
    return claims


@dataclass(frozen=True)
class Retrieval:
    """What the first stage of the end-to-end mode found, over all claims."""

    top_k: int
    evidence_abstracts: int
    retrieved_abstracts: int
    rationale_sentences: int
    retrieved_sentences: int
    """Rationale sentences in retrieved abstracts: the recall any method can reach."""

    def describe(self) -> str:
        return (
            f"BM25 top-{self.top_k}: {self.retrieved_abstracts} of {self.evidence_abstracts} "
            f"evidence abstracts retrieved, holding {self.retrieved_sentences} of "
            f"{self.rationale_sentences} rationale sentences (recall ceiling "
            f"{self.retrieved_sentences / max(1, self.rationale_sentences):.3f}); a rationale "
            "sentence of an abstract BM25 did not retrieve counts as missed."
        )


def check_doc_ids(claims: Sequence[Claim], corpus: Mapping[str, str], source: str) -> None:
    """Every evidence abstract of ``claims`` must be a document of ``corpus``; abstracts whose
    corpus text is not ``title + " " + sentences`` are logged (their rationale text is used).

    Raises:
        DatasetError: Doc ids absent from ``corpus`` (count and examples named).
    """
    ids = {d for claim in claims for d in claim.doc_ids}
    if "" in ids:
        raise DatasetError("the rationales file has lines without doc_id: --beir needs them")
    absent = sorted(ids - corpus.keys())
    if absent:
        raise DatasetError(
            f"{len(absent)} of {len(ids)} rationale doc ids are not in {source} (e.g. "
            f"{', '.join(absent[:3])}): the rationales must come from that corpus"
        )
    differ = {
        d
        for claim in claims
        for d, title, text in zip(claim.doc_ids, claim.titles, claim.documents, strict=True)
        if corpus[d] != _titled(title, text)[0]
    }
    if differ:
        logger.info(
            "%d of %d evidence abstracts differ from their %s text (e.g. %s); the rationale "
            "file's sentences are packed for them",
            len(differ),
            len(ids),
            source,
            ", ".join(sorted(differ)[:3]),
        )


def _titled(title: str, text: str) -> tuple[str, int]:
    """The corpus form of an abstract (BEIR: title, a space, the text) and the text's offset."""
    return (f"{title} {text}", len(title) + 1) if title else (text, 0)


def retrieve_claims(
    claims: Sequence[Claim], corpus: Mapping[str, str], top_k: int, *, language: str | None
) -> tuple[list[Claim], Retrieval]:
    """Each claim with its BM25 top-``top_k`` abstracts of ``corpus`` in BM25 order (the
    first stage of ``rerankkit eval``: :func:`rerankkit.eval.bm25_search`) in place of its
    evidence abstracts.

    A retrieved evidence abstract is the rationale file's text in the corpus form (title, a
    space, its sentences), its rationale spans shifted; any other abstract is the corpus text
    with no rationale; the rationale sentences of evidence abstracts not retrieved go into
    :attr:`Claim.missed`. ``corpus``: ``{doc_id: text}`` as :func:`parse_corpus` reads it;
    ``claims`` must come from it (:func:`check_doc_ids`).
    """
    from rerankkit.eval._retrieval import bm25_search

    queries = {claim.query_id: claim.query for claim in claims}
    run = bm25_search(dict(corpus), queries, top_k, language=language)
    found: list[Claim] = []
    counts = [0, 0, 0, 0]  # evidence abstracts, retrieved ones, rationale sentences, retrieved
    for claim in claims:
        evidence = {d: i for i, d in enumerate(claim.doc_ids)}
        ids = [str(d) for d in run.get(claim.query_id, {})][:top_k]
        documents, rationale = [], []
        for doc_id in ids:
            if doc_id in evidence:
                i = evidence[doc_id]
                text, at = _titled(claim.titles[i], claim.documents[i])
                spans = [(start + at, end + at) for start, end in claim.rationale[i]]
            else:
                text, spans = corpus[doc_id], []
            documents.append(text)
            rationale.append(spans)
        total = sum(len(spans) for spans in claim.rationale)
        kept = sum(len(spans) for spans in rationale)
        counts[0] += len(evidence)
        counts[1] += sum(d in evidence for d in ids)
        counts[2] += total
        counts[3] += kept
        found.append(
            Claim(claim.query, documents, rationale, ids, [], claim.query_id, total - kept)
        )
    return found, Retrieval(top_k, *counts)


def covered(kept: Sequence[Span], target: Span) -> bool:
    """Whether one kept span holds ``target`` entirely.

    Example:
        >>> covered([(0, 10), (20, 30)], (22, 30)), covered([(0, 10), (10, 30)], (5, 15))
        (True, False)
    """
    return any(start <= target[0] and target[1] <= end for start, end in kept)


@dataclass(frozen=True)
class Kept:
    """What one method kept for one claim: spans per abstract index, and tokens."""

    spans: dict[int, list[Span]]
    tokens: int


def from_pruned(pruned: Sequence[PrunedDocument]) -> Kept:
    return Kept({p.index: list(p.spans) for p in pruned}, sum(p.tokens for p in pruned))


def cut_documents(
    documents: Sequence[str], order: Sequence[int], count: Callable[[str], int], budget: int
) -> Kept:
    """Whole documents in ``order`` while they fit, then the longest prefix of the next one
    (at a space) that fits; nothing after it.

    Example:
        >>> cut_documents(["a b c d", "e f"], [1, 0], lambda t: len(t.split()), 4).spans
        {1: [(0, 3)], 0: [(0, 3)]}
    """
    spans: dict[int, list[Span]] = {}
    used = 0
    for d in order:
        text = documents[d]
        size = count(text)
        if used + size <= budget:
            spans[d], used = [(0, len(text))], used + size
            continue
        cuts = [i for i, ch in enumerate(text) if ch == " "]
        low, high = 0, len(cuts)  # the largest number of leading cuts whose prefix fits
        while low < high:
            middle = (low + high + 1) // 2
            if used + count(text[: cuts[middle - 1]]) <= budget:
                low = middle
            else:
                high = middle - 1
        if low:
            end = cuts[low - 1]
            spans[d], used = [(0, end)], used + count(text[:end])
        break
    return Kept(spans, used)


@dataclass
class MethodScores:
    """One scored method: per claim its sentence (or abstract) scores, and the scoring cost."""

    name: str
    pairs: int = 0
    seconds: float = 0.0
    scores: list[Any] = field(default_factory=list)


@dataclass
class ContextRow:
    """One line of the report."""

    method: str
    budget: int | None
    recall: float
    tokens: float
    original_tokens: float
    pairs_per_second: float | None
    margin: float | None = None

    def label(self) -> str:
        return str(self.budget) if self.budget is not None else f"adaptive (margin {self.margin})"


def _recall(claims: Sequence[Claim], kept: Sequence[Kept]) -> tuple[float, float]:
    hits = total = tokens = 0
    for claim, one in zip(claims, kept, strict=True):
        total += claim.missed
        for d, targets in enumerate(claim.rationale):
            total += len(targets)
            hits += sum(covered(one.spans.get(d, []), target) for target in targets)
        tokens += one.tokens
    return (hits / total if total else 0.0), tokens / max(1, len(claims))


def score_sentences(pruner: ContextPruner, claims: Sequence[Claim], name: str) -> MethodScores:
    """Every claim's sentence scores with ``pruner`` (timed)."""
    scored = MethodScores(name)
    for i, claim in enumerate(claims):
        started = time.perf_counter()
        scores = pruner.sentence_scores(claim.query, claim.documents)
        scored.seconds += time.perf_counter() - started
        scored.pairs += sum(len(s) for s in scores)
        scored.scores.append(scores)
        if (i + 1) % 50 == 0:
            logger.info("%s: %d/%d claims", name, i + 1, len(claims))
    return scored


def score_documents(pruner: ContextPruner, claims: Sequence[Claim], name: str) -> MethodScores:
    """Every claim's abstracts scored whole by the pruner's reranker (timed)."""
    scored = MethodScores(name)
    for claim in claims:
        started = time.perf_counter()
        scores = pruner.reranker.score(claim.query, claim.documents)
        scored.seconds += time.perf_counter() - started
        scored.pairs += len(scores)
        scored.scores.append(scores)
    return scored


def evaluate_context(
    claims: Sequence[Claim],
    *,
    cross_encoders: Sequence[tuple[str, ContextPruner]],
    bi_encoder: tuple[str, ContextPruner] | None,
    budgets: Sequence[int],
    margins: Sequence[float] = (),
) -> list[ContextRow]:
    """Every method at every budget (and each cross-encoder pruner's adaptive default at each
    of ``margins``). ``cross_encoders`` are ``(name, pruner)`` pairs, at least one; the first
    one's token counter counts for every method.

    Raises:
        ValueError: No cross-encoder pruner.
    """
    if not cross_encoders:
        raise ValueError("cross_encoders must hold at least one (name, pruner) pair")
    lead = cross_encoders[0][1]  # its tokenizer counts for every method; it splits for lead-k
    count = lead.count_tokens
    original = sum(count(d) for c in claims for d in c.documents) / max(1, len(claims))
    rows: list[ContextRow] = []

    def add(
        name: str, kept: list[Kept], budget: int | None, rate: float | None, **extra: Any
    ) -> None:
        recall, tokens = _recall(claims, kept)
        rows.append(ContextRow(name, budget, recall, tokens, original, rate, **extra))

    positions = [
        [[-float(i) for i in range(len(split_sentences(d)))] for d in c.documents] for c in claims
    ]
    for budget in budgets:
        kept = [
            from_pruned(lead.select(c.documents, p, budget_tokens=budget))
            for c, p in zip(claims, positions, strict=True)
        ]
        add("lead-k", kept, budget, None)
    pruners = ([bi_encoder] if bi_encoder else []) + list(cross_encoders)
    for name, pruner in pruners:
        scored = score_sentences(pruner, claims, name)
        rate = scored.pairs / scored.seconds if scored.seconds else None
        for budget in budgets:
            kept = [
                from_pruned(pruner.select(c.documents, s, budget_tokens=budget))
                for c, s in zip(claims, scored.scores, strict=True)
            ]
            add(name, kept, budget, rate)
        for margin in margins if (name, pruner) in cross_encoders else ():
            adaptive = ContextPruner(
                pruner.reranker, tokenizer=count, margin=margin, marker=pruner.marker
            )
            kept = [
                from_pruned(adaptive.select(c.documents, s))
                for c, s in zip(claims, scored.scores, strict=True)
            ]
            add(name, kept, None, rate, margin=margin)
    seen: set[int] = set()
    for name, pruner in cross_encoders:
        if id(pruner.reranker) in seen:
            continue
        seen.add(id(pruner.reranker))
        label = "whole documents by " + name.removeprefix("pruner ").split(" ±")[0]
        docs = score_documents(pruner, claims, label)
        rate = docs.pairs / docs.seconds if docs.seconds else None
        for budget in budgets:
            kept = []
            for claim, scores in zip(claims, docs.scores, strict=True):
                order = sorted(range(len(scores)), key=lambda d: (-scores[d], d))
                kept.append(cut_documents(claim.documents, order, count, budget))
            add(label, kept, budget, rate)
    return rows


def to_markdown(rows: Sequence[ContextRow], claims: int, *, note: str = "") -> str:
    """The report table (recall of rationale sentences, mean tokens kept per claim); ``note``
    goes under it."""
    lines = [
        "| method | budget (tokens) | rationale recall | tokens kept / claim | pairs/s |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        rate = "-" if row.pairs_per_second is None else f"{row.pairs_per_second:.0f}"
        lines.append(
            f"| {row.method} | {row.label()} | {row.recall:.3f} | {row.tokens:.1f} | {rate} |"
        )
    original = rows[0].original_tokens if rows else 0.0
    lines.append("")
    what = "retrieved" if note else "evidence"
    lines.append(f"{claims} claims; whole {what} abstracts: {original:.1f} tokens per claim.")
    if note:
        lines.append(note)
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[ContextRow], path: str | Path) -> Path:
    """Recall against tokens kept, one line per method (matplotlib's Agg canvas)."""
    require("matplotlib", "eval")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for method in dict.fromkeys(row.method for row in rows):
        points = sorted((r.tokens, r.recall) for r in rows if r.method == method and r.budget)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
    ax.set_xlabel("tokens kept per claim (mean)")
    ax.set_ylabel("rationale sentence recall")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, format="png")
    return path
