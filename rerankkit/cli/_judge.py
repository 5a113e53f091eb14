"""``rerankkit judge``: graded qrels (0-3) from an LLM, for collections without labels.

Example (``my_llms.py`` defines ``judge_llm``, a callable ``prompt -> str`` or an object with
``complete(prompt)``)::

    rerankkit judge --data ../shared/data/trec-dl-2019-passage \\
        --run ../shared/data/trec-dl-2019-passage/runs/bm25-top100.trec --top-n 10 \\
        --llm my_llms:judge_llm --output llm-qrels.tsv

It grades the top ``--top-n`` documents of each query of every ``--run`` (the union), with the
UMBRELA-structured prompt (``rerankkit.eval._judge``), caching each grade per (query,
document) in ``OUTPUT.cache.jsonl``; writes BEIR qrels that ``rerankkit eval --qrels`` and
``rerankkit calibrate --qrels`` read; prints what it cost and, where the collection has human
qrels, the agreement (Cohen's kappa; with two or more runs, Kendall's tau of the system
ranking by nDCG@10 under either qrels).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import Field

from rerankkit.cli._options import CliError, Options, add_model_options, model_from_args


class JudgeOptions(Options):
    """The options of ``rerankkit judge``."""

    data: Path
    """folder with corpus.jsonl, queries.jsonl (and qrels/<split>.tsv for agreement)"""
    run: tuple[Path, ...] = Field(json_schema_extra={"metavar": ["RUN"]})
    """a TREC run whose top --top-n documents are judged (repeatable: the union is judged
    and the runs are the systems ranked for Kendall's tau)"""
    llm: str = Field(json_schema_extra={"metavar": ["MODULE:NAME"]})
    """the LLM: a callable prompt -> str, or an object with complete(prompt), importable as
    MODULE:NAME"""
    output: Path
    """the qrels file to write (BEIR TSV)"""
    top_n: int = Field(10, ge=1)
    """documents judged per query and run"""
    split: str = "test"
    """human qrels split (for agreement), if the collection has one"""
    relevance_level: int = Field(1, ge=1)
    """human grade counted as relevant for the binary kappa (the LLM's: 2 and up)"""
    max_concurrency: int = Field(4, ge=1)
    """LLM calls in flight"""
    max_retries: int = Field(3, ge=0)
    """retries of a failed LLM call"""
    timeout: float = Field(60.0, gt=0)
    """seconds one LLM call may take"""


def add_parser(commands: Any) -> None:
    """Register ``judge`` on the ``rerankkit`` command's subparsers."""
    parser = commands.add_parser(
        "judge",
        help="write graded qrels (0-3) with an LLM judge (UMBRELA prompt)",
        description="Grade the top documents of each query of the runs with an LLM and the "
        "UMBRELA-structured relevance prompt (0-3), cached per (query, document); write BEIR "
        "qrels; report cost and, with human qrels, agreement (Cohen's kappa, Kendall's tau).",
    )
    add_model_options(parser, JudgeOptions)
    parser.set_defaults(handler=run_judge)


def load_llm(target: str) -> Any:
    """The object ``MODULE:NAME`` names (the user's own LLM, from their code).

    Raises:
        CliError: Not ``MODULE:NAME``, not importable, or neither callable nor an LLM.
    """
    module, sep, name = target.partition(":")
    if not sep or not module or not name:
        raise CliError(f"argument --llm: expected MODULE:NAME, got {target!r}")
    sys.path.insert(0, ".")  # the user's module, from the directory they run in
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise CliError(f"argument --llm: cannot load {target!r}: {error}") from None
    finally:
        sys.path.remove(".")
    if not (callable(obj) or hasattr(obj, "complete")):
        raise CliError(f"argument --llm: {target!r} is neither callable nor has complete()")
    return obj


def run_judge(args: argparse.Namespace) -> int:
    from rerankkit._retry import RetryPolicy
    from rerankkit.eval._datasets import (
        beir_files,
        check_run,
        load_trec_run,
        parse_corpus,
        parse_qrels,
        parse_queries,
        read_lines,
    )
    from rerankkit.eval._judge import RelevanceJudge, agreement, judge_run, write_qrels
    from rerankkit.eval._runs import candidates

    options = model_from_args(JudgeOptions, args)
    llm = load_llm(options.llm)
    files = beir_files(options.data, options.split)
    corpus = parse_corpus(read_lines(files["corpus"]), source=str(files["corpus"]))
    queries = parse_queries(read_lines(files["queries"]), source=str(files["queries"]))
    human = (
        parse_qrels(read_lines(files["qrels"]), source=str(files["qrels"]))
        if files["qrels"].is_file()
        else None
    )
    from rerankkit.eval._datasets import Dataset

    dataset = Dataset(options.data.name, corpus, queries, human or {})
    runs = {
        str(path): check_run(load_trec_run(path), dataset, source=str(path)) for path in options.run
    }
    todo: dict[str, list[str]] = {}
    for run in runs.values():
        for qid, docs in candidates(run, options.top_n).items():
            todo.setdefault(qid, [])
            todo[qid] += [doc for doc in docs if doc not in todo[qid]]
    retry = RetryPolicy(
        timeout=options.timeout,
        max_retries=options.max_retries,
        max_concurrency=options.max_concurrency,
    )
    cache = options.output.with_name(options.output.name + ".cache.jsonl")
    judge = RelevanceJudge(llm, retry=retry, cache=cache)
    qrels = judge_run(judge, queries, corpus, todo)
    write_qrels(qrels, options.output)
    report: dict[str, Any] = {"costs": judge.costs.to_dict(), "output": str(options.output)}
    if human:
        report["agreement"] = agreement(
            human,
            qrels,
            human_level=options.relevance_level,
            runs={name: {q: dict(d) for q, d in run.items()} for name, run in runs.items()},
        )
    sys.stdout.write(json.dumps(report, indent=2, allow_nan=False) + "\n")
    return 0
