"""The ``rerankkit`` command line: ``eval``, ``rerank`` and ``demo``.

Examples (from the project root, with the test collections beside it)::

    rerankkit eval --data ../shared/data/trec-dl-2019-passage \\
        --run ../shared/data/trec-dl-2019-passage/runs/bm25-top100.trec \\
        --reranker embedding: --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce \\
        --output reports/dl19
    rerankkit eval --data ../shared/data/scifact --first-stage hybrid --depth 30 \\
        --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce
    echo '{"text": "Paris is the capital of France."}' | \\
        rerankkit rerank --query "capital of France" --docs - --model keyword: --top-n 1
    rerankkit demo --top-k 3

Errors in the input (a malformed dataset, a bad spec, a bad JSONL line) print one clear line
and exit with status 2; other failures show their traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from rerankkit._result import result_metadata
from rerankkit.errors import (
    DatasetError,
    LLMCallError,
    MissingExtraError,
    ModelLoadError,
    RemoteServiceError,
    RerankkitError,
)

logger = logging.getLogger("rerankkit.cli")

_USAGE_ERROR = 2


class CliError(RerankkitError, ValueError):
    """A user error reported as one line (exit status 2)."""


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from rerankkit import __version__
    from rerankkit._specs import spec_kinds

    kinds = "\n".join(f"  {name:<14} {text}" for name, text in spec_kinds().items())
    spec_help = (
        "reranker specs look like KIND:TARGET?OPTION=VALUE&..., e.g.\n"
        "  cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2?max_length=256&dtype=bfloat16\n"
        f"kinds:\n{kinds}"
    )
    parser = argparse.ArgumentParser(
        prog="rerankkit",
        description="Rerank documents and measure rerankers on your own data.",
        epilog=spec_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rerankkit {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    verbosity.add_argument("-q", "--quiet", action="store_true", help="errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = commands.add_parser(
        "eval",
        help="evaluate rerankers on a BEIR-layout test collection",
        description="Rerank a first-stage run with each reranker and report nDCG@10, MRR@10, "
        "Recall@depth, per-query wins/losses against the first stage, latency and pairs/s.",
        epilog=spec_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument(
        "--data",
        required=True,
        type=Path,
        help="folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv",
    )
    ev.add_argument("--split", default="test", help="qrels split (default: test)")
    first = ev.add_mutually_exclusive_group(required=True)
    first.add_argument(
        "--run", type=Path, help="first-stage TREC run file (qid Q0 docid rank score tag)"
    )
    first.add_argument(
        "--first-stage",
        choices=["bm25", "dense", "hybrid"],
        help="build the first stage: bm25 (bm25s), dense (packaged "
        "all-MiniLM-L6-v2) or hybrid (reciprocal rank fusion of both)",
    )
    ev.add_argument(
        "--reranker",
        action="append",
        default=[],
        metavar="SPEC",
        help="a reranker to evaluate (repeatable; none = first stage only)",
    )
    ev.add_argument(
        "--depth",
        type=_positive_int,
        default=100,
        help="candidates reranked per query, and the Recall cut-off (default: 100)",
    )
    ev.add_argument(
        "--relevance-level",
        type=_positive_int,
        default=1,
        help="minimum grade counted as relevant by MRR and Recall (default: 1; "
        "TREC DL passage convention for MRR: 2)",
    )
    ev.add_argument(
        "--bm25-language",
        default="english",
        help="BM25 analyser language (stemming + stopwords); 'none' for a plain regex "
        "tokenizer, e.g. for Korean (default: english)",
    )
    ev.add_argument(
        "--per-query",
        action="store_true",
        help="one scoring call per query even where sharing work across queries "
        "is faster (bi-encoders), to measure single-request latency",
    )
    ev.add_argument(
        "--ray",
        action="store_true",
        help="rerank on Ray Data actors (local, or the cluster RAY_ADDRESS names), each "
        "loading the model once; pip install 'rerankkit[ray]'",
    )
    ev.add_argument(
        "--ray-actors",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --ray: a fixed pool of N actors (default: Ray Data's autoscaling pool)",
    )
    ev.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="write report.json, report.md and report.png into DIR",
    )
    ev.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they show only when stderr is a terminal)",
    )
    ev.set_defaults(handler=_cmd_eval)

    rr = commands.add_parser(
        "rerank",
        help="rerank a JSONL file of documents for one query (JSONL out)",
        description="Read documents as JSONL (one JSON string, or an object with a text field, a "
        'line) and write the ranked documents as JSONL: {"index", "relevance_score", "document"} '
        "with index = position in the input, best first.",
        epilog=spec_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rr.add_argument("--query", required=True, help="the query")
    rr.add_argument("--docs", required=True, help="JSONL file of documents ('-' for stdin)")
    rr.add_argument("--model", required=True, metavar="SPEC", help="reranker spec")
    rr.add_argument("--top-n", type=_positive_int, default=None, help="keep the best N")
    rr.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="keep documents scoring at least this (applied before --top-n)",
    )
    rr.add_argument(
        "--text-field",
        default="text",
        help="field holding the text when lines are objects (default: text)",
    )
    rr.add_argument("--output", default="-", help="output file ('-' for stdout, the default)")
    rr.set_defaults(handler=_cmd_rerank)

    demo = commands.add_parser(
        "demo",
        help="rerank a packaged sample corpus and show what changed",
        description="Run a first-stage retriever over the packaged sample corpus, rerank, and "
        "print before/after rankings.",
    )
    demo.add_argument(
        "--model",
        default=None,
        metavar="ID_OR_PATH",
        help="cross-encoder hub id or local folder (default: the default "
        "cross-encoder if cached, else the packaged bi-encoder)",
    )
    demo.add_argument(
        "--top-k", type=_positive_int, default=3, help="passages shown per query (default: 3)"
    )
    demo.add_argument(
        "--depth",
        type=_positive_int,
        default=10,
        help="BM25 candidates per query handed to the reranker (default: 10)",
    )
    demo.add_argument("--device", default=None, help="torch device (default: cuda > mps > cpu)")
    demo.set_defaults(handler=_cmd_demo)
    importlib.import_module("rerankkit.cli._serve").add_parser(commands)  # issue 12
    importlib.import_module("rerankkit.cli._train").add_parser(commands)  # issue 15
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# --------------------------------------------------------------------------- eval


def _unique_names(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        names.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return names


def _rerank_on_ray(spec: Any, dataset: Any, first: Any, name: str, args: argparse.Namespace) -> Any:
    from rerankkit.eval._ray_run import rerank_run_on_ray

    return rerank_run_on_ray(
        spec, dataset, first, top_n=args.depth, concurrency=args.ray_actors, desc=name
    )


def _cmd_eval(args: argparse.Namespace) -> int:
    from rerankkit._specs import build_reranker, check_spec
    from rerankkit.eval._datasets import check_evaluable, check_run, load_beir, load_trec_run
    from rerankkit.eval._experiment import evaluate_runs
    from rerankkit.eval._runs import first_stage_run, rerank_run

    specs = [check_spec(text) for text in args.reranker]  # bad specs fail before any loading
    if args.ray and args.per_query:
        raise CliError("--per-query measures one request in process; it cannot go with --ray")
    if args.output is not None:
        check_output_dir(args.output)  # before the run, not after it
    dataset = load_beir(args.data, split=args.split)
    check_evaluable(dataset)
    progress = False if args.no_progress else None
    if args.run is not None:
        first_name = args.run.stem
        raw = load_trec_run(args.run)
        check_evaluable(dataset, raw, source=str(args.run))
        first = check_run(raw, dataset, source=str(args.run))
    else:
        language = None if args.bm25_language.lower() == "none" else args.bm25_language
        first_name = args.first_stage
        # The first stage's own row is measured on at least 10 candidates (nDCG@10, MRR@10),
        # so a --depth below 10 changes what is reranked, not the baseline.
        first = first_stage_run(
            dataset,
            args.first_stage,
            max(args.depth, FIRST_STAGE_MIN_DEPTH),
            bm25_language=language,
            progress=progress,
        )
    runs: dict[str, Any] = {first_name: first}
    timings = {}
    failures: list[str] = []
    for name, spec in zip(_unique_names([s.label for s in specs]), specs, strict=True):
        if name in runs:
            name = f"{name} (reranker)"
        try:  # one reranker failing to load or run must not lose the others' results
            if args.ray:
                runs[name], timings[name] = _rerank_on_ray(spec, dataset, first, name, args)
                continue
            logger.info("loading %s", spec.text)
            reranker = build_reranker(spec)
            runs[name], timings[name] = rerank_run(
                reranker,
                dataset,
                first,
                top_n=args.depth,
                progress=progress,
                desc=name,
                batch_queries=False if args.per_query else None,
            )
            del reranker  # free the model before loading the next one
        except Exception as error:  # reported after the report of the others is written
            logger.debug("reranker %s failed", spec.text, exc_info=True)
            logger.error("reranker %s failed: %s", spec.text, error)
            failures.append(f"{spec.text}: {type(error).__name__}: {error}")
    report = evaluate_runs(
        dataset,
        runs,
        first_stage=first_name,
        top_n=args.depth,
        relevance_level=args.relevance_level,
        timings=timings,
    )
    report.notes.extend(f"not evaluated, failed: {failure}" for failure in failures)
    sys.stdout.write(report.to_markdown())
    if args.output is not None:
        paths = report.save(args.output)
        sys.stdout.write("\nwrote " + ", ".join(str(p) for p in paths.values()) + "\n")
    if failures:
        raise CliError(
            f"{len(failures)} of {len(specs)} rerankers failed (the report above has the "
            f"others): {'; '.join(failures)}"
        )
    return 0


FIRST_STAGE_MIN_DEPTH = 10  # the deepest fixed cut-off of the report (nDCG@10, MRR@10)


def check_output_dir(path: Path) -> None:
    """Fail before a long run when ``--output`` cannot become a report folder.

    Raises:
        CliError: ``path`` (or a parent) is an existing file.
    """
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is" if folder == path else f"is inside {folder}, which is"
                raise CliError(f"--output {path} {what} an existing file, not a folder")
            return


# --------------------------------------------------------------------------- rerank


def read_documents(
    lines: Sequence[str] | TextIO, *, text_field: str = "text", source: str = "docs"
) -> tuple[list[Any], list[str]]:
    """Parse JSONL documents: each line a JSON string or an object with ``text_field``.

    Returns:
        The parsed records (kept whole for the output) and their texts.

    Raises:
        DatasetError: Invalid JSON, naming the line.
        CliError: A record without a string ``text_field``, naming the line.

    Example:
        >>> read_documents(['"plain text"', '{"id": 7, "text": "an object"}'])
        (['plain text', {'id': 7, 'text': 'an object'}], ['plain text', 'an object'])
    """
    from rerankkit.eval._datasets import json_lines

    records: list[Any] = []
    texts: list[str] = []
    for lineno, record in json_lines(lines, source):
        if isinstance(record, str):
            text = record
        elif isinstance(record, dict) and isinstance(record.get(text_field), str):
            text = record[text_field]
        else:
            raise CliError(
                f"{source}:{lineno}: expected a JSON string or an object with a string "
                f"{text_field!r} field, got {json.dumps(record, ensure_ascii=False)[:80]}"
            )
        records.append(record)
        texts.append(text)
    return records, texts


def _cmd_rerank(args: argparse.Namespace) -> int:
    from rerankkit._specs import build_reranker, check_spec

    spec = check_spec(args.model)  # a bad option fails before the documents are read
    if args.docs == "-":
        records, texts = read_documents(sys.stdin, text_field=args.text_field, source="<stdin>")
    else:
        try:
            with open(args.docs, encoding="utf-8-sig") as handle:  # a BOM is tolerated
                records, texts = read_documents(
                    handle, text_field=args.text_field, source=args.docs
                )
        except FileNotFoundError:
            raise CliError(f"--docs: no such file: {args.docs}") from None
        except OSError as error:  # a folder, no permission, ...
            raise CliError(f"--docs: cannot read {args.docs}: {error.strerror}") from None
    reranker = build_reranker(spec)
    results = reranker.rerank(
        args.query, texts, top_n=args.top_n, score_threshold=args.score_threshold
    )
    lines = [
        # relevance_score plus the result's details (rerank_failed, empty_document, ...);
        # scores are always finite, so this is strict JSON
        json.dumps(
            {"index": r.index, **result_metadata(r), "document": records[r.index]},
            ensure_ascii=False,
            allow_nan=False,
        )
        for r in results
    ]
    text = "".join(line + "\n" for line in lines)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:  # a folder, a missing parent folder, no permission, ...
            raise CliError(f"--output: cannot write {args.output}: {error.strerror}") from None
    return 0


# --------------------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    from rerankkit.cli._demo import run_demo

    return int(run_demo(model=args.model, top_k=args.top_k, depth=args.depth, device=args.device))


# --------------------------------------------------------------------------- main


@contextlib.contextmanager
def _cli_logging(verbose: int, quiet: bool) -> Iterator[None]:
    """Log rerankkit's messages to stderr for one command; the previous setup comes back after,
    so calling ``main`` inside a program (or a test) leaves that program's logging alone."""
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("rerankkit")
    saved = (package_logger.handlers[:], package_logger.level, package_logger.propagate)
    package_logger.handlers[:] = [handler]
    package_logger.setLevel(level)
    package_logger.propagate = False
    try:
        yield
    finally:
        package_logger.handlers[:], package_logger.level, package_logger.propagate = saved


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rerankkit`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)

    with _cli_logging(args.verbose, args.quiet):
        try:
            return int(args.handler(args))
        except (
            CliError,
            DatasetError,
            MissingExtraError,
            ModelLoadError,
            ValueError,
            TypeError,
        ) as error:
            # Input errors: one clear line, not a traceback. MissingExtraError says what to
            # install; ModelLoadError names the model and why it did not load.
            logger.debug("details", exc_info=True)  # -vv shows where it came from
            print(f"rerankkit {args.command}: error: {error}", file=sys.stderr)
            return _USAGE_ERROR
        except (RemoteServiceError, LLMCallError) as error:
            # A service that failed after its retries: one line (the error carries the
            # service, status and a body excerpt, never a key), exit 1 as for any failed run.
            logger.debug("details", exc_info=True)
            print(f"rerankkit {args.command}: error: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
