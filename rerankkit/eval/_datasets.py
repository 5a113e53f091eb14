"""Reading IR test collections: BEIR-layout folders and TREC run files.

A BEIR folder holds ``corpus.jsonl`` (``{"_id", "title", "text"}`` a line), ``queries.jsonl``
(``{"_id", "text"}``) and ``qrels/<split>.tsv`` (``query-id<TAB>corpus-id<TAB>score`` with an
optional header). Parsing is done by pure functions over lines, so every error path is testable
without files; the loaders only open files and name them in errors.

Nothing is dropped silently: malformed lines raise :class:`DatasetError` with file and line
number, duplicate ids raise, and judgments that point at unknown queries or documents are
counted in :class:`QrelsCheck` and logged as a warning.

Example:
    >>> parse_queries(['{"_id": "q1", "text": "what is bm25"}'])
    {'q1': 'what is bm25'}
    >>> parse_qrels(["query-id\\tcorpus-id\\tscore", "q1\\td7\\t2"])
    {'q1': {'d7': 2}}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankkit.errors import DatasetError

logger = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

_EXAMPLES = 5  # unknown ids quoted in messages and reports


def _examples(ids: Iterable[str]) -> str:
    return ", ".join(list(ids)[:_EXAMPLES])


@dataclass(frozen=True, slots=True)
class QrelsCheck:
    """How many judgments point outside the loaded queries and corpus.

    Judgments for unknown documents are normal in reranking sets (TREC DL keeps the complete
    official qrels, so passages BM25 did not retrieve are judged but absent from the corpus);
    they still count for the ideal DCG and are kept. Judgments for unknown queries cannot be
    evaluated and are left out of ``Dataset.qrels``.
    """

    judgments: int
    unknown_query_judgments: int = 0
    unknown_queries: tuple[str, ...] = ()
    unknown_document_judgments: int = 0
    unknown_documents_example: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A loaded test collection.

    Attributes:
        name: Folder name.
        corpus: Document id -> text (``title + " " + text`` when the title is non-empty).
        queries: Query id -> text.
        qrels: Query id -> {document id: grade}, restricted to known queries.
        qrels_check: Counts of judgments pointing at unknown queries/documents.
    """

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: Qrels
    qrels_check: QrelsCheck = field(default_factory=lambda: QrelsCheck(judgments=0))

    @property
    def judged_query_ids(self) -> list[str]:
        """Ids of the queries that have judgments, in ``queries.jsonl`` order."""
        return [qid for qid in self.queries if qid in self.qrels]


# --------------------------------------------------------------------------- pure parsing


def _numbered_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of each non-blank line, 1-based, with a UTF-8 byte order mark
    removed from the first line (Windows tools start files with one; it is not part of the
    first id, JSON value or column)."""
    for lineno, line in enumerate(lines, start=1):
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        if line.strip():
            yield lineno, line


def utf8_lines(data: Iterable[bytes], source: str) -> Iterator[str]:
    r"""Each line of ``data`` (a file opened in binary, ``sys.stdin.buffer``) decoded as strict
    UTF-8: a byte that is not UTF-8 stops the read, naming the file and the line, instead of
    being replaced (which would silently change the user's text).

    Raises:
        DatasetError: A line is not UTF-8; the message names ``source``, the line and the
            byte.

    Example:
        >>> list(utf8_lines([b"caf\xc3\xa9\n", b"ok"], "docs.jsonl"))
        ['café\n', 'ok']
        >>> list(utf8_lines([b"ok\n", b'"caf\xe9"\n'], "docs.jsonl"))
        Traceback (most recent call last):
        rerankkit.errors.DatasetError: docs.jsonl:2: not UTF-8 text (byte 0xe9 at column 5: invalid continuation byte); save it as UTF-8
    """  # noqa: E501 (the real message)
    for lineno, line in enumerate(data, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(
                f"{source}:{lineno}: not UTF-8 text (byte 0x{line[error.start]:02x} at column "
                f"{error.start + 1}: {error.reason}); save it as UTF-8"
            ) from None


def json_lines(lines: Iterable[str], source: str) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of a JSON-lines file, 1-based.

    Raises:
        DatasetError: A line is not valid JSON; the message names ``source`` and the line.

    Example:
        >>> list(json_lines(['{"a": 1}', "", '"text"'], "docs.jsonl"))
        [(1, {'a': 1}), (3, 'text')]
        >>> list(json_lines(["{bad"], "docs.jsonl"))
        Traceback (most recent call last):
        rerankkit.errors.DatasetError: docs.jsonl:1: invalid JSON: Expecting property name enclosed in double quotes (column 2)
    """  # noqa: E501 (the real message)
    for lineno, line in _numbered_lines(lines):
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"{source}:{lineno}: invalid JSON: {error.msg} (column {error.colno})"
            ) from None


def _id_of(record: Mapping[str, Any], where: str) -> str:
    value = record.get("_id")
    # Numeric ids are common in exported sets (MS MARCO); they are compared as strings.
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise DatasetError(f'{where}: "_id" must be a non-empty string, got {value!r}')
    return str(value)


def _text_of(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if value is None and key == "title":
        return ""  # titles are optional (and often null in exports)
    if not isinstance(value, str):
        raise DatasetError(f'{where}: "{key}" must be a string, got {value!r}')
    return value


def _parse_texts(lines: Iterable[str], source: str, what: str) -> dict[str, str]:
    """``{_id: text}`` of a BEIR JSON-lines file of ``what`` (``"document"``: the title, when
    present and non-empty, goes before the text with a space; or ``"query"``)."""
    texts: dict[str, str] = {}
    for lineno, record in json_lines(lines, source):
        where = f"{source}:{lineno}"
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
        item_id, text = _id_of(record, where), _text_of(record, "text", where)
        title = _text_of(record, "title", where).strip() if what == "document" else ""
        if item_id in texts:
            raise DatasetError(f"{where}: duplicate {what} id {item_id!r}")
        texts[item_id] = f"{title} {text}" if title else text
    return texts


def parse_corpus(lines: Iterable[str], *, source: str = "corpus.jsonl") -> dict[str, str]:
    """Parse ``corpus.jsonl`` lines into ``{doc_id: text}``.

    The title, when present and non-empty, is prepended to the text with a space (the BEIR
    convention). Blank lines are skipped.

    Raises:
        DatasetError: Invalid JSON, a missing ``_id``/``text``, or a duplicate id (with line).

    Example:
        >>> parse_corpus(['{"_id": "d1", "title": "BM25", "text": "a ranking function"}'])
        {'d1': 'BM25 a ranking function'}
    """
    return _parse_texts(lines, source, "document")


def parse_queries(lines: Iterable[str], *, source: str = "queries.jsonl") -> dict[str, str]:
    """Parse ``queries.jsonl`` lines into ``{query_id: text}``.

    Raises:
        DatasetError: Invalid JSON, a missing ``_id``/``text``, or a duplicate id (with line).

    Example:
        >>> parse_queries(['{"_id": 7, "text": "q"}'])
        {'7': 'q'}
    """
    return _parse_texts(lines, source, "query")


def _fields(line: str, where: str, separator: str | None, count: int, layout: str) -> list[str]:
    """``line`` split on ``separator`` (``None``: any whitespace) into ``count`` stripped
    fields, or a DatasetError naming the place, the ``layout`` and the count found."""
    fields = [part.strip() for part in line.rstrip("\r\n").split(separator)]
    if len(fields) != count:
        spaces = separator is None and len(fields) > count
        hint = " (document ids with spaces are not supported in TREC runs)" if spaces else ""
        raise DatasetError(f"{where}: expected {count} {layout}, got {len(fields)}{hint}")
    return fields


def parse_qrels(lines: Iterable[str], *, source: str = "qrels/test.tsv") -> Qrels:
    """Parse BEIR qrels (``query-id<TAB>corpus-id<TAB>score``) into ``{qid: {docid: grade}}``.

    Fields are split on tabs only, so document ids may contain spaces. A first line whose
    score column is not an integer is taken as the header.

    Raises:
        DatasetError: A wrong number of columns, a non-integer grade, an empty id, or a
            repeated (query, document) pair, with the line number.

    Example:
        >>> parse_qrels(["q1\\tdoc one\\t1", "q1\\td2\\t0"])
        {'q1': {'doc one': 1, 'd2': 0}}
    """
    qrels: Qrels = {}
    for lineno, line in _numbered_lines(lines):
        where = f"{source}:{lineno}"
        columns = "tab-separated columns (query-id, corpus-id, score)"
        query_id, doc_id, grade_text = _fields(line, where, "\t", 3, columns)
        try:
            grade = int(grade_text)
        except ValueError:
            if lineno == 1:
                continue  # header
            raise DatasetError(
                f"{where}: relevance grade must be an integer, got {grade_text!r}"
            ) from None
        if not query_id or not doc_id:
            raise DatasetError(f"{where}: empty query or document id")
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            raise DatasetError(f"{where}: repeated judgment for ({query_id!r}, {doc_id!r})")
        judged[doc_id] = grade
    return qrels


def parse_trec_run(lines: Iterable[str], *, source: str = "run") -> Run:
    """Parse a TREC run (``qid Q0 docid rank score tag``) into ``{qid: {docid: score}}``.

    TREC runs are whitespace-separated, so document ids containing spaces cannot be written
    in them (some collections have such ids: map them first). A line with more than six
    fields is rejected rather than guessed at. The rank column is ignored: order comes from
    the scores, as in trec_eval.

    Raises:
        DatasetError: A malformed line, a non-numeric score, or a repeated (query, document).

    Example:
        >>> parse_trec_run(["q1 Q0 d3 1 12.5 bm25", "q1 Q0 d9 2 11.0 bm25"])
        {'q1': {'d3': 12.5, 'd9': 11.0}}
    """
    run: Run = {}
    for lineno, line in _numbered_lines(lines):
        where = f"{source}:{lineno}"
        layout = "whitespace-separated fields 'qid Q0 docid rank score tag'"
        query_id, _, doc_id, _, score_text, _ = _fields(line, where, None, 6, layout)
        try:
            score = float(score_text)
        except ValueError:
            raise DatasetError(f"{where}: score must be a number, got {score_text!r}") from None
        ranked = run.setdefault(query_id, {})
        if doc_id in ranked:
            raise DatasetError(f"{where}: document {doc_id!r} listed twice for query {query_id!r}")
        ranked[doc_id] = score
    return run


def check_qrels(
    qrels: Mapping[str, Mapping[str, int]], queries: Mapping[str, str], corpus: Mapping[str, str]
) -> QrelsCheck:
    """Count judgments that point at queries or documents absent from the collection.

    Example:
        >>> check = check_qrels({"q1": {"d1": 1, "dX": 1}, "qX": {"d1": 1}}, {"q1": ""}, {"d1": ""})
        >>> check.unknown_queries, check.unknown_document_judgments
        (('qX',), 1)
    """
    unknown_queries = [qid for qid in qrels if qid not in queries]
    unknown_docs = [
        doc_id
        for qid, judged in qrels.items()
        if qid in queries
        for doc_id in judged
        if doc_id not in corpus
    ]
    return QrelsCheck(
        judgments=sum(len(judged) for judged in qrels.values()),
        unknown_query_judgments=sum(len(qrels[qid]) for qid in unknown_queries),
        unknown_queries=tuple(unknown_queries),
        unknown_document_judgments=len(unknown_docs),
        unknown_documents_example=tuple(unknown_docs[:_EXAMPLES]),
    )


# --------------------------------------------------------------------------- files


def read_lines(path: Path) -> list[str]:
    """The lines of the file at ``path`` as strict UTF-8 (:func:`utf8_lines`: a bad byte names
    the file and the line); a missing file is a ``DatasetError`` naming it."""
    try:
        with path.open("rb") as handle:  # a byte order mark is dropped by _numbered_lines
            return list(utf8_lines(handle, str(path)))
    except FileNotFoundError:
        raise DatasetError(f"missing file: {path}") from None


def beir_files(folder: str | Path, split: str) -> dict[str, Path]:
    """The files of a BEIR-layout folder that :func:`load_beir` reads for ``split``.

    Example:
        >>> [path.as_posix() for path in beir_files("scifact", "test").values()]
        ['scifact/corpus.jsonl', 'scifact/queries.jsonl', 'scifact/qrels/test.tsv']
    """
    root = Path(folder)
    return {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }


def missing_beir_files(folder: str | Path, split: str) -> list[str]:
    """Those of :func:`beir_files` that are not files (checked without reading any).

    Example:
        >>> missing_beir_files("no-such-folder", "test")[0]
        'no-such-folder/corpus.jsonl'
    """
    return [str(path) for path in beir_files(folder, split).values() if not path.is_file()]


def load_beir(folder: str | Path, *, split: str = "test") -> Dataset:
    """Load a BEIR-layout folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

    Judgments for unknown queries are counted, logged as a warning and left out; judgments
    for unknown documents are counted, logged and kept (they count for the ideal DCG).

    Raises:
        DatasetError: The folder or one of its files is missing (all missing files are
            named at once), or a file is malformed (file and line number).

    Example (the SciFact test collection beside the checkout)::

        data = load_beir("../shared/data/scifact")
        len(data.queries), len(data.judged_query_ids), len(data.corpus)
        # (1107, 300, 5183)
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    paths = beir_files(root, split)
    missing = missing_beir_files(root, split)
    if missing:
        raise DatasetError(
            f"missing file{'s' if len(missing) > 1 else ''} in {root}: {', '.join(missing)} "
            "(a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv)"
        )
    corpus = parse_corpus(read_lines(paths["corpus"]), source=str(paths["corpus"]))
    queries = parse_queries(read_lines(paths["queries"]), source=str(paths["queries"]))
    for kind, texts in (("corpus", corpus), ("queries", queries)):
        if not texts:
            raise DatasetError(f"{paths[kind]} is empty: a collection needs {kind} to evaluate")
    all_qrels = parse_qrels(read_lines(paths["qrels"]), source=str(paths["qrels"]))
    check = check_qrels(all_qrels, queries, corpus)
    if check.unknown_query_judgments:
        logger.warning(
            "%s: %d judgments for %d queries not in queries.jsonl are ignored (e.g. %s)",
            paths["qrels"],
            check.unknown_query_judgments,
            len(check.unknown_queries),
            _examples(check.unknown_queries),
        )
    if check.unknown_document_judgments:
        logger.warning(
            "%s: %d of %d judgments point at documents not in corpus.jsonl (kept: they count "
            "for the ideal ranking; normal for reranking sets with complete qrels), e.g. %s",
            paths["qrels"],
            check.unknown_document_judgments,
            check.judgments,
            _examples(check.unknown_documents_example),
        )
    qrels = {qid: judged for qid, judged in all_qrels.items() if qid in queries}
    return Dataset(
        name=root.resolve().name, corpus=corpus, queries=queries, qrels=qrels, qrels_check=check
    )


def load_trec_run(path: str | Path) -> Run:
    """Read a TREC run file into ``{qid: {docid: score}}`` (see :func:`parse_trec_run`).

    Example (the TREC DL 2019 BM25 run beside the checkout)::

        len(load_trec_run("../shared/data/trec-dl-2019-passage/runs/bm25-top100.trec"))
        # 43
    """
    path = Path(path)
    return parse_trec_run(read_lines(path), source=str(path))


def check_run(
    run: Mapping[str, Mapping[str, float]], dataset: Dataset, *, source: str = "run"
) -> Run:
    """Validate a first-stage run against a dataset before reranking.

    Candidates must have text to rerank, so a document id missing from the corpus raises.
    Queries missing from ``queries.jsonl`` are logged and left out.

    Raises:
        DatasetError: The run names documents that are not in the corpus.
    """
    missing_docs = {doc_id for ranked in run.values() for doc_id in ranked} - dataset.corpus.keys()
    if missing_docs:
        raise DatasetError(
            f"{source}: {len(missing_docs)} candidate documents are not in the corpus of "
            f"{dataset.name} (e.g. {_examples(sorted(missing_docs))}); a reranker needs their text"
        )
    unknown = [qid for qid in run if qid not in dataset.queries]
    if unknown:
        logger.warning(
            "%s: %d queries not in queries.jsonl are ignored (e.g. %s)",
            source,
            len(unknown),
            _examples(unknown),
        )
    return {qid: dict(ranked) for qid, ranked in run.items() if qid in dataset.queries}


def check_evaluable(
    dataset: Dataset, run: Mapping[str, Mapping[str, float]] | None = None, *, source: str = "run"
) -> None:
    """Fail when nothing could be measured: no query has judgments, or (with ``run``) no
    judged query has a candidate. Metrics would otherwise be a table of zeros.

    Raises:
        DatasetError: Naming the mismatch, with example ids from both sides.

    Example:
        >>> data = Dataset("toy", {"d": "x"}, {"q1": "x"}, {"q1": {"d": 1}})
        >>> check_evaluable(data, {"Q1": {"d": 1.0}}, source="bm25.trec")
        Traceback (most recent call last):
        rerankkit.errors.DatasetError: bm25.trec: none of its 1 queries is among the 1 judged queries of toy (run ids e.g. Q1; judged ids e.g. q1): nothing to evaluate
    """  # noqa: E501 (the real message)
    judged = dataset.judged_query_ids
    if not judged:
        check = dataset.qrels_check
        other = f" for {len(check.unknown_queries)} other query ids, e.g. "
        other += _examples(check.unknown_queries)
        raise DatasetError(
            f"{dataset.name}: none of the {len(dataset.queries)} queries in queries.jsonl has "
            f"judgments in the qrels ({check.judgments} judgments"
            f"{other if check.unknown_queries else ''}; queries.jsonl ids e.g. "
            f"{_examples(dataset.queries)}): nothing to evaluate (wrong --split, or qrels of "
            "another collection?)"
        )
    if run is not None and not any(run.get(qid) for qid in judged):
        raise DatasetError(
            f"{source}: none of its {len(run)} queries is among the {len(judged)} judged queries "
            f"of {dataset.name} (run ids e.g. {_examples(run) or 'none'}; "
            f"judged ids e.g. {_examples(judged)}): nothing to evaluate"
        )
