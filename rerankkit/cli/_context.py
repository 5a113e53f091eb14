"""``rerankkit eval-context``: rationale recall of context methods at token budgets.

Example (from the project root, with the test collections beside it)::

    rerankkit eval-context --data ../shared/data/scifact-rationales/train.jsonl \\
        --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce \\
        --budget 64 --budget 128 --budget 256 --output reports/context

End to end (each claim's BM25 top-5 abstracts of the BEIR corpus packed into one budget)::

    rerankkit eval-context --data ../shared/data/scifact-rationales/train.jsonl \\
        --beir ../shared/data/scifact --top-k 5 \\
        --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce --output reports/e2e

Methods: lead-k, a bi-encoder sentence pruner (``--bi-encoder``), a ``ContextPruner`` per
``--reranker`` (and per ``--context-sentences``), and whole abstracts by rerank order cut at the
budget (see :mod:`rerankkit.eval._context`); with ``--beir`` the claims' BM25 top-k abstracts
stand in for their evidence abstracts. Writes ``report.json``, ``report.md`` and
``report.png`` (recall against tokens kept) with ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from rerankkit.cli._options import Options, add_model_options, checked_spec, model_from_args

logger = logging.getLogger(__name__)


class _EvalContext(Options):
    """The options of ``rerankkit eval-context``."""

    data: Path
    """rationales JSONL (query_id, query, sentences, rationale per line; see
    ../shared/data/scifact-rationales/SOURCE.md)"""
    reranker: tuple[str, ...] = Field(..., min_length=1, json_schema_extra={"metavar": ["SPEC"]})
    """a pointwise reranker spec scoring sentences (repeatable)"""
    bi_encoder: str = "embedding:"
    """bi-encoder spec of the sentence-optimizer baseline ('none' to skip; default: the
    packaged all-MiniLM-L6-v2)"""
    beir: Path | None = Field(None, json_schema_extra={"metavar": ["DIR"]})
    """end to end: pack each claim's BM25 top-k abstracts of DIR/corpus.jsonl (a BEIR folder
    whose ids the rationales use) instead of its evidence abstracts"""
    top_k: int = Field(5, ge=1, json_schema_extra={"metavar": ["K"]})
    """abstracts BM25 retrieves per claim with --beir"""
    bm25_language: str = "english"
    """BM25 analyser language with --beir ('none': a plain regex tokenizer)"""
    budget: tuple[Annotated[int, Field(ge=1)], ...] | None = Field(
        None, json_schema_extra={"metavar": ["TOKENS"]}
    )
    """total token budget per claim (repeatable; default 64 128 256, with --beir 128 256
    512)"""
    context_sentences: tuple[Annotated[int, Field(ge=0)], ...] = Field(
        (0,), json_schema_extra={"metavar": ["K"]}
    )
    """neighbours each side scored with a sentence (repeatable: one cross-encoder method each)"""
    margin: tuple[Annotated[float, Field(ge=0, allow_inf_nan=False)], ...] = Field(
        (0.1, 0.25, 0.5), json_schema_extra={"metavar": ["M"]}
    )
    """margins of the adaptive default (no budget) to report (repeatable)"""
    tokenizer: str | None = None
    """tokenizer folder / hub id counting tokens (default: the first reranker's own)"""
    max_claims: int | None = Field(None, ge=1, json_schema_extra={"metavar": ["N"]})
    """a seeded sample of N claims (default: all)"""
    seed: int = 0
    """seed of --max-claims' sample"""
    output: Path | None = Field(None, json_schema_extra={"metavar": ["DIR"]})
    """write report.json, report.md and report.png into DIR"""


def add_parser(commands: Any) -> None:
    """Register ``eval-context`` on the ``rerankkit`` command's subparsers."""
    parser = commands.add_parser(
        "eval-context",
        help="measure context pruning: rationale recall at token budgets",
        description="For each claim's evidence abstracts, report per method and budget the "
        "share of annotated rationale sentences the kept text covers, tokens kept and pairs/s: "
        "lead-k, a bi-encoder sentence pruner, the cross-encoder ContextPruner, and whole "
        "abstracts by rerank order cut at the budget. With --beir, each claim's BM25 top-k "
        "abstracts of a BEIR corpus are packed instead (end to end).",
    )
    add_model_options(parser, _EvalContext)
    parser.set_defaults(handler=run_eval_context)


def run_eval_context(args: argparse.Namespace) -> int:
    from rerankkit._specs import build_reranker
    from rerankkit.backends._speed import cpu_description, cpu_flags, speed_flags
    from rerankkit.context import ContextPruner
    from rerankkit.eval._context import (
        check_doc_ids,
        evaluate_context,
        load_claims,
        plot,
        retrieve_claims,
        to_markdown,
    )
    from rerankkit.eval._datasets import parse_corpus, read_lines

    options = model_from_args(_EvalContext, args)
    specs = [checked_spec(text) for text in options.reranker]  # fail before any loading
    bi_spec = None if options.bi_encoder.lower() == "none" else checked_spec(options.bi_encoder)
    claims = load_claims(options.data, max_claims=options.max_claims, seed=options.seed)
    note, retrieval = "", None
    if options.beir is not None:
        source = options.beir / "corpus.jsonl"
        corpus = parse_corpus(read_lines(source), source=str(source))
        check_doc_ids(claims, corpus, str(source))
        language = None if options.bm25_language.lower() == "none" else options.bm25_language
        claims, retrieval = retrieve_claims(claims, corpus, options.top_k, language=language)
        note = retrieval.describe()
        logger.info(note)
    budgets = options.budget or ((128, 256, 512) if options.beir else (64, 128, 256))
    pruners: list[tuple[str, ContextPruner]] = []
    for spec in specs:
        reranker = build_reranker(spec)
        for k in options.context_sentences:
            tokenizer = options.tokenizer if not pruners else pruners[0][1].count_tokens
            name = f"pruner {spec.label}" + (f" ±{k}" if k else "")
            pruners.append(
                (name, ContextPruner(reranker, tokenizer=tokenizer, context_sentences=k))
            )
    count = pruners[0][1].count_tokens
    bi = None
    if bi_spec is not None:
        bi = (
            f"bi-encoder {bi_spec.label}",
            ContextPruner(build_reranker(bi_spec), tokenizer=count),
        )
    rows = evaluate_context(
        claims,
        cross_encoders=pruners,
        bi_encoder=bi,
        budgets=sorted(set(budgets)),
        margins=options.margin,
    )
    table = to_markdown(rows, len(claims), note=note)
    sys.stdout.write(table)
    if options.output is not None:
        options.output.mkdir(parents=True, exist_ok=True)
        report = {
            "command": shlex.join(["rerankkit", *sys.argv[1:]]),
            "claims": len(claims),
            "cpu": f"{cpu_description()}; flags: {speed_flags(cpu_flags())}; "
            f"load average {os.getloadavg()}",
            "settings": json.loads(options.model_dump_json()),
            "retrieval": retrieval and {**retrieval.__dict__, "note": note},
            "rows": [row.__dict__ for row in rows],
        }
        paths = [options.output / "report.json", options.output / "report.md"]
        paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        paths[1].write_text(table, encoding="utf-8")
        paths.append(plot(rows, options.output / "report.png"))
        sys.stdout.write("\nwrote " + ", ".join(str(p) for p in paths) + "\n")
    return 0
