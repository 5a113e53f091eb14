"""The ``rerankkit`` command line: ``eval`` and ``rerank`` here, and the parser of every
subcommand (``demo``, ``serve``, ``train`` register themselves from their own modules).

Examples (from the project root, with the test collections beside it)::

    rerankkit eval --data ../shared/data/trec-dl-2019-passage \\
        --run ../shared/data/trec-dl-2019-passage/runs/bm25-top100.trec \\
        --reranker embedding: --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce \\
        --output reports/dl19
    rerankkit eval --data ../shared/data/scifact --first-stage hybrid --top-n 30 \\
        --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce
    echo '{"text": "Paris is the capital of France."}' | \\
        rerankkit rerank --query "capital of France" --docs - --reranker keyword: --top-n 1
    rerankkit demo --top-n 3

One vocabulary: ``--reranker SPEC`` names the reranker in every command, ``--top-n`` every
cut-off; an old spelling (``--model``, ``--top-k``, ``--depth``, ...) is refused with one line
naming the new one. rerankkit's own errors (:class:`~rerankkit.errors.RerankkitError`: a bad
option, a malformed dataset or JSONL line, a missing extra, a model that will not load) print
one line and exit with status 2, or 1 for a remote service or LLM that failed for good; any
other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from rerankkit._base import check_relevance_cut
from rerankkit._ordering import BELOW_MIN_RELEVANCE_KEY
from rerankkit._result import result_metadata
from rerankkit._validation import (
    ON_NO_RELEVANT,
    check_min_relevance,
    check_query,
    check_score_threshold,
)
from rerankkit.cli import _calibrate, _context, _demo, _judge, _serve, _train
from rerankkit.cli._options import (
    CliError,
    Options,
    add_model_options,
    argparse_type,
    checked_spec,
    model_from_args,
    positive_int,
)
from rerankkit.errors import LLMCallError, RemoteServiceError, RerankkitError
from rerankkit.eval._runs import FIRST_STAGES

if TYPE_CHECKING:
    from rerankkit._specs import RerankerSpec

logger = logging.getLogger("rerankkit.cli")

RENAMED_FLAGS: dict[str, dict[str, str]] = {  # command -> {old flag: new flag}
    "rerank": {"--model": "--reranker"},
    "eval": {"--depth": "--top-n"},
    "demo": {"--model": "--reranker", "--top-k": "--top-n", "--depth": "--first-stage-top-n"},
    "train": {"--eval-depth": "--eval-top-n"},
}


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from rerankkit import __version__
    from rerankkit._specs import spec_kinds

    kinds = "\n".join(f"  {name:<14} {text}" for name, text in spec_kinds().items())
    spec_help: dict[str, Any] = {  # the epilog of the commands that take --reranker SPEC
        "epilog": "reranker specs look like KIND:TARGET?OPTION=VALUE&..., e.g.\n"
        "  cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2?max_length=256&dtype=bfloat16\n"
        f"kinds:\n{kinds}",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    parser = argparse.ArgumentParser(
        prog="rerankkit",
        description="Rerank documents and measure rerankers on your own data.",
        **spec_help,
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
        "Recall@top-n, per-query wins/losses against the first stage, latency and pairs/s.",
        **spec_help,
    )
    first = ev.add_mutually_exclusive_group(required=True)
    first.add_argument(
        "--run", type=Path, help="first-stage TREC run file (qid Q0 docid rank score tag)"
    )
    first.add_argument(
        "--first-stage",
        choices=FIRST_STAGES,
        help="build the first stage: bm25 (bm25s), dense (packaged "
        "all-MiniLM-L6-v2) or hybrid (reciprocal rank fusion of both)",
    )
    add_model_options(ev, _Eval)
    ev.set_defaults(handler=_cmd_eval)

    rr = commands.add_parser(
        "rerank",
        help="rerank a JSONL file of documents for one query (JSONL out)",
        description="Read documents as JSONL (one JSON string, or an object with a text field, a "
        'line) and write the ranked documents as JSONL: {"index", "relevance_score", "document"} '
        "with index = position in the input, best first.",
        **spec_help,
    )
    rr.add_argument("--query", required=True, type=argparse_type(check_query), help="the query")
    rr.add_argument("--docs", required=True, help="JSONL file of documents ('-' for stdin)")
    rr.add_argument("--reranker", required=True, metavar="SPEC", help="reranker spec")
    rr.add_argument("--top-n", type=positive_int, help="keep the best N")
    rr.add_argument(
        "--score-threshold",
        type=argparse_type(check_score_threshold, float),
        help="keep documents scoring at least this (applied before --top-n)",
    )
    rr.add_argument(
        "--min-relevance",
        type=argparse_type(check_min_relevance, float),
        metavar="P",
        help="the adaptive cut: keep documents with P(relevant) >= P (0-1), then --top-n as a "
        "ceiling; needs a calibrated reranker (spec option ?calibration=CAL.json)",
    )
    rr.add_argument(
        "--on-no-relevant",
        choices=ON_NO_RELEVANT,
        default="empty",
        help="when no document reaches --min-relevance: write none (empty, the default) or the "
        'best one with "below_min_relevance": true (best); either way a warning says so',
    )
    rr.add_argument(
        "--text-field",
        default="text",
        help="field holding the text when lines are objects (default: text)",
    )
    rr.add_argument("--output", default="-", help="output file ('-' for stdout, the default)")
    rr.set_defaults(handler=_cmd_rerank)

    for module in (_calibrate, _context, _demo, _judge, _serve, _train):
        module.add_parser(commands)
    return parser


# --------------------------------------------------------------------------- eval


class _Eval(Options):
    """The options of ``rerankkit eval`` (besides its first stage: ``--run`` or
    ``--first-stage``, argparse's required choice of one)."""

    data: Path
    """folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv"""
    split: str = "test"
    """qrels split"""
    qrels: Path | None = None
    """judgments to use instead of the collection's (BEIR TSV: query-id, corpus-id, score),
    e.g. rerankkit judge's"""
    reranker: tuple[str, ...] = Field((), json_schema_extra={"metavar": ["SPEC"]})
    """a reranker to evaluate (repeatable; none = first stage only)"""
    top_n: int = Field(100, ge=1)
    """first-stage candidates reranked per query, and the Recall cut-off"""
    relevance_level: int = Field(1, ge=1)
    """minimum grade counted as relevant by MRR and Recall (TREC DL passage convention for
    MRR: 2)"""
    bm25_language: str = "english"
    """BM25 analyser language (stemming + stopwords); 'none' for a plain regex tokenizer,
    e.g. for Korean"""
    per_query: bool = False
    """one scoring call per query even where sharing work across queries is faster
    (bi-encoders), to measure single-request latency"""
    ray: bool = False
    """rerank on Ray Data actors (local, or the cluster RAY_ADDRESS names), each loading the
    model once; pip install 'rerankkit[ray]'"""
    ray_actors: int | None = Field(None, ge=1, json_schema_extra={"metavar": ["N"]})
    """with --ray: a fixed pool of N actors (default: Ray Data's autoscaling pool)"""
    output: Path | None = Field(None, json_schema_extra={"metavar": ["DIR"]})
    """write report.json, report.md and report.png into DIR"""
    progress: bool | None = None
    """progress bars (default: when stderr is a terminal)"""
    fast: bool = False
    """run cross-encoders on their measured fastest CPU path (bf16/int8 where it keeps the
    ranking; figures may then differ by machine) instead of the exact float32 one, which
    prints the same figures on every machine"""

    @model_validator(mode="after")
    def _per_query_in_process(self) -> _Eval:
        if self.ray and self.per_query:
            raise ValueError("--per-query measures one request in process; it cannot go with --ray")
        return self


def _unique_names(labels: Sequence[str]) -> list[str]:
    """Each label, numbered from its second use on: ``["a", "a"]`` -> ``["a", "a #2"]``."""
    counts = [labels[: i + 1].count(label) for i, label in enumerate(labels)]
    return [label if n == 1 else f"{label} #{n}" for label, n in zip(labels, counts, strict=True)]


def _cmd_eval(args: argparse.Namespace) -> int:
    from rerankkit._specs import build_reranker
    from rerankkit.eval._datasets import check_evaluable, check_run, load_trec_run
    from rerankkit.eval._metrics import evaluate_runs
    from rerankkit.eval._runs import first_stage_run, rerank_run, rerank_run_on_ray

    options = model_from_args(_Eval, args)
    given = [checked_spec(text) for text in options.reranker]  # fail before any loading
    specs = given if options.fast else [exact_by_default(spec) for spec in given]
    if options.output is not None:
        check_output_dir(options.output)  # before the run, not after it
    dataset = _calibrate.load_judged(options.data, options.split, options.qrels)
    check_evaluable(dataset)
    if args.run is not None:
        first_name = args.run.stem
        raw = load_trec_run(args.run)
        check_evaluable(dataset, raw, source=str(args.run))
        first = check_run(raw, dataset, source=str(args.run))
    else:
        language = None if options.bm25_language.lower() == "none" else options.bm25_language
        first_name = args.first_stage
        # The first stage's own row is measured on at least 10 candidates (nDCG@10, MRR@10),
        # so a --top-n below 10 changes what is reranked, not the baseline.
        first = first_stage_run(
            dataset,
            args.first_stage,
            max(options.top_n, FIRST_STAGE_MIN_TOP_N),
            bm25_language=language,
            progress=options.progress,
        )
    runs: dict[str, Any] = {first_name: first}
    timings = {}
    failures: list[str] = []
    computed: list[str] = []  # what each reranker ran on, for the report
    for name, spec in zip(_unique_names([s.label for s in given]), specs, strict=True):
        if name in runs:
            name = f"{name} (reranker)"
        try:  # one reranker failing to load or run must not lose the others' results
            if options.ray:
                exact = spec.options.get("exact") is True
                computed.append(
                    f"{name}: {'the exact path' if exact else 'the path'} each Ray actor chose"
                )
                runs[name], timings[name] = rerank_run_on_ray(
                    spec,
                    dataset,
                    first,
                    top_n=options.top_n,
                    concurrency=options.ray_actors,
                    desc=name,
                )
            else:
                logger.info("loading %s", spec.text)
                reranker = build_reranker(spec)
                # nothing keeps the model once its run is done: freed before the next one loads
                runs[name], timings[name] = rerank_run(
                    reranker,
                    dataset,
                    first,
                    top_n=options.top_n,
                    progress=options.progress,
                    desc=name,
                    batch_queries=False if options.per_query else None,
                )
                computed.append(f"{name}: {compute_path(reranker)}")
                del reranker
        except Exception as error:  # reported after the report of the others is written
            logger.debug("reranker %s failed", spec.text, exc_info=True)
            logger.error("reranker %s failed: %s", spec.text, error)
            failures.append(f"{spec.text}: {type(error).__name__}: {error}")
    report = evaluate_runs(
        dataset,
        runs,
        first_stage=first_name,
        top_n=options.top_n,
        relevance_level=options.relevance_level,
        timings=timings,
    )
    report.notes.extend(f"ran on {path}" for path in computed)
    report.notes.extend(f"not evaluated, failed: {failure}" for failure in failures)
    sys.stdout.write(report.to_markdown())
    if options.output is not None:
        paths = report.save(options.output)
        sys.stdout.write("\nwrote " + ", ".join(str(p) for p in paths.values()) + "\n")
    if failures:
        raise CliError(
            f"{len(failures)} of {len(specs)} rerankers failed (the report above has the "
            f"others): {'; '.join(failures)}"
        )
    return 0


FIRST_STAGE_MIN_TOP_N = 10  # the deepest fixed cut-off of the report (nDCG@10, MRR@10)


def exact_by_default(spec: RerankerSpec) -> RerankerSpec:
    """A cross-encoder spec with ``exact=True`` unless it names a precision (``dtype``,
    ``quantize``, ``exact``): what ``rerankkit eval`` runs without ``--fast``, so the figures
    it prints are float32's on every machine (a bf16 or int8 path moves nDCG@10 by about 0.003
    and depends on the CPU; BENCHMARKS.md). Other kinds are returned as they are.

    Example:
        >>> from rerankkit._specs import parse_spec
        >>> exact_by_default(parse_spec("cross-encoder:models/ce?max_length=256")).options
        {'max_length': 256, 'exact': True}
        >>> exact_by_default(parse_spec("cross-encoder:models/ce?dtype=bfloat16")).options
        {'dtype': 'bfloat16'}
    """
    named = {"exact", "quantize"} & set(spec.options)
    dtype = spec.options.get("dtype")
    if spec.kind != "cross-encoder" or named or dtype not in (None, "auto"):
        return spec
    return dataclasses.replace(spec, options={**spec.options, "exact": True})


def compute_path(reranker: Any) -> str:
    """What a reranker computes with, for the report: the cross-encoder's CPU path and
    precision, else its device and dtype where it has them.

    Example:
        >>> from types import SimpleNamespace
        >>> compute_path(SimpleNamespace(cpu_path="openvino-float32", exact=True))
        'openvino-float32 (float32, exact)'
        >>> compute_path(SimpleNamespace(cpu_path="openvino-bfloat16", exact=False))
        'openvino-bfloat16 (bfloat16 where it kept the ranking on the probe; --fast)'
        >>> compute_path(SimpleNamespace(device="cpu", dtype="torch.float32"))
        'cpu, float32'
    """
    path = getattr(reranker, "cpu_path", None)
    if path is not None:
        precision = path.rsplit("-", 1)[-1]
        if precision == "float32":
            return f"{path} (float32, exact)"
        return f"{path} ({precision} where it kept the ranking on the probe; --fast)"
    device, dtype = getattr(reranker, "device", None), getattr(reranker, "dtype", None)
    parts = [str(part).removeprefix("torch.") for part in (device, dtype) if part is not None]
    return ", ".join(parts) or type(reranker).__name__


def check_output_dir(path: Path) -> None:
    """Fail before a long run when ``--output`` cannot become a report folder.

    Raises:
        CliError: ``path`` (or a parent) is an existing file.
    """
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    if not existing.is_dir():
        what = "is" if existing == path else f"is inside {existing}, which is"
        raise CliError(f"--output {path} {what} an existing file, not a folder")


# --------------------------------------------------------------------------- rerank


def read_documents(
    lines: Iterable[str], *, text_field: str = "text", source: str = "docs"
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
    from rerankkit._specs import build_reranker

    spec = checked_spec(args.reranker)  # a bad option fails before the documents are read
    from rerankkit.eval._datasets import utf8_lines

    if args.docs == "-":  # bytes: a non-UTF-8 byte is refused, never replaced
        lines = utf8_lines(sys.stdin.buffer, "<stdin>")
        records, texts = read_documents(lines, text_field=args.text_field, source="<stdin>")
    else:
        try:
            with open(args.docs, "rb") as handle:  # a BOM is tolerated (read_documents)
                lines = utf8_lines(handle, args.docs)
                records, texts = read_documents(lines, text_field=args.text_field, source=args.docs)
        except FileNotFoundError:
            raise CliError(f"--docs: no such file: {args.docs}") from None
        except OSError as error:  # a folder, no permission, ...
            raise CliError(f"--docs: cannot read {args.docs}: {error.strerror}") from None
    reranker = build_reranker(spec)
    try:  # before any document is scored
        cut = check_relevance_cut(reranker, args.min_relevance, args.on_no_relevant)
    except ValueError as error:
        raise CliError(f"argument --min-relevance: {error}") from None
    results = reranker.rerank(
        args.query,
        texts,
        top_n=args.top_n,
        score_threshold=args.score_threshold,
        min_relevance=args.min_relevance,
        on_no_relevant=args.on_no_relevant,
    )
    if cut is not None and (not results or results[0].details.get(BELOW_MIN_RELEVANCE_KEY)):
        logger.warning(
            "abstained: no document of %d reaches --min-relevance %s%s",
            len(texts),
            cut.min_relevance,
            " (the best one is written, marked below_min_relevance)" if results else "",
        )
    text = "".join(
        # relevance_score plus the result's details (rerank_failed, empty_document, ...);
        # scores are always finite, so this is strict JSON
        json.dumps(
            {"index": r.index, **result_metadata(r), "document": records[r.index]},
            ensure_ascii=False,
            allow_nan=False,
        )
        + "\n"
        for r in results
    )
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:  # a folder, a missing parent folder, no permission, ...
            raise CliError(f"--output: cannot write {args.output}: {error.strerror}") from None
    return 0


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
    # Long work says how far along it is by default, also when stderr is a file (-q: not).
    progress = logging.getLogger("rerankkit.progress")
    saved_progress = progress.level
    progress.setLevel(logging.ERROR if quiet else min(level, logging.INFO))
    try:
        yield
    finally:
        package_logger.handlers[:], package_logger.level, package_logger.propagate = saved
        progress.setLevel(saved_progress)


def refuse_renamed_flags(command: str, arguments: Sequence[str]) -> None:
    """Refuse the old spelling of a renamed option of ``command``, naming the new one.

    Example:
        >>> refuse_renamed_flags("demo", ["--top-k=5"])
        Traceback (most recent call last):
        rerankkit.cli._options.CliError: --top-k was renamed --top-n
    """
    if command == "serve" and arguments and not arguments[0].startswith("-"):
        raise CliError(f"serve {arguments[0]} was renamed serve --reranker {arguments[0]}")
    renamed = RENAMED_FLAGS.get(command, {})
    for old in (argument.split("=", 1)[0] for argument in arguments):
        if old in renamed:
            raise CliError(f"{old} was renamed {renamed[old]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rerankkit`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is not None:  # before argparse, which would only say "unrecognized"
        try:
            refuse_renamed_flags(command, argv[argv.index(command) + 1 :])
        except CliError as error:
            print(f"rerankkit {command}: error: {error}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    with _cli_logging(args.verbose, args.quiet):
        try:
            return int(args.handler(args))
        except RerankkitError as error:
            # One line, not a traceback: the message names the option, file, model, extra to
            # install or service (never a key). A service that failed after its retries exits
            # 1 as any failed run; the rest are usage or input errors (2).
            logger.debug("details", exc_info=True)  # -vv shows where it came from
            print(f"rerankkit {args.command}: error: {error}", file=sys.stderr)
            return 1 if isinstance(error, (RemoteServiceError, LLMCallError)) else 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
