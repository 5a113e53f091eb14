"""Training data: what each query is trained on, read from a BEIR folder or a JSONL file.

Everything becomes a list of :class:`TrainQuery` (a query, its relevant passages, its
non-relevant passages): the one shape the miner fills with negatives, the teacher scores and
:mod:`rerankkit.train._examples` turns into the rows a loss reads.

JSONL files hold one object a line, either triples ``{"query", "positive", "negative"}`` or
labelled pairs ``{"query", "passage", "label"}`` (``label``: an integer grade, > 0 relevant,
as in qrels; a triple's positive counts as grade 1). Lines of the same query text are gathered
into one :class:`TrainQuery`, first appearance first; a passage given twice for one query is
kept once (with its highest grade). A line mixing both forms, or a passage given as relevant and
as non-relevant for the same query, is refused rather than half-read.

Example:
    >>> rows = ['{"query": "q", "positive": "p", "negative": "n1"}',
    ...         '{"query": "q", "passage": "n2", "label": 0}']
    >>> parse_training_jsonl(rows)
    [TrainQuery(query='q', positives=('p',), negatives=('n1', 'n2'), query_id='q')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rerankkit._blank import is_blank
from rerankkit.errors import DatasetError
from rerankkit.eval._datasets import Dataset, json_lines, load_beir, utf8_lines


@dataclass(frozen=True)
class TrainQuery:
    """One training query and its passages.

    Attributes:
        query: The query text.
        positives: Relevant passages (qrels grade > 0), highest grade first.
        negatives: Non-relevant passages (judged 0, given in the file, or mined).
        query_id: The BEIR query id (JSONL data: the query text).
        negative_ids: Corpus ids of ``negatives`` where known (mined or judged), else empty.
        grades: The relevance grade of each of ``positives`` (qrels grade or JSONL label; a
            triple's positive is 1); empty means all 1. ``listwise`` trains on them.
    """

    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    query_id: str = ""
    negative_ids: tuple[str, ...] = field(default=(), repr=False, compare=False)
    grades: tuple[int, ...] = field(default=(), repr=False)

    def positive_grades(self) -> tuple[int, ...]:
        """The grade of each positive (1 each when ``grades`` is empty).

        Example:
            >>> TrainQuery("q", ("a", "b")).positive_grades()
            (1, 1)
        """
        return self.grades if self.grades else (1,) * len(self.positives)


def queries_from_beir(dataset: Dataset) -> list[TrainQuery]:
    """One :class:`TrainQuery` per judged query with at least one positive.

    Judged non-relevant documents (grade 0) present in the corpus are its first negatives;
    mining adds more. Positives missing from the corpus cannot be trained on and are left out
    (counted in ``dataset.qrels_check``).
    """
    out = []
    for qid in dataset.judged_query_ids:
        judged = dataset.qrels[qid]
        relevant = [d for d, grade in judged.items() if grade > 0 and d in dataset.corpus]
        positives = sorted(relevant, key=lambda d: -judged[d])  # highest grade first, ties in order
        if not positives:
            continue
        negative_ids = [d for d, grade in judged.items() if grade <= 0 and d in dataset.corpus]
        out.append(
            TrainQuery(
                query=dataset.queries[qid],
                positives=tuple(dataset.corpus[d] for d in positives),
                negatives=tuple(dataset.corpus[d] for d in negative_ids),
                query_id=qid,
                negative_ids=tuple(negative_ids),
                grades=tuple(judged[d] for d in positives),
            )
        )
    return out


def _text_field(record: Mapping[str, Any], key: str, source: str, lineno: int) -> str:
    value = record.get(key)
    if not isinstance(value, str) or is_blank(value):
        raise DatasetError(f'{source}:{lineno}: "{key}" must be a non-empty string, got {value!r}')
    return value


_TRIPLE = frozenset({"query", "positive", "negative"})
_PAIR = frozenset({"query", "passage", "label"})
_TRIPLE_KEYS = '{"query", "positive", "negative"}'  # as the messages write them
_PAIR_KEYS = '{"query", "passage", "label"}'


def _graded_passages(record: dict[str, Any], source: str, lineno: int) -> list[tuple[str, int]]:
    """A line's ``(passage, grade)`` pairs: a triple's positive (1) and negative (0), or a
    labelled pair's passage and label."""
    triple = "positive" in record or "negative" in record
    pair = "passage" in record or "label" in record
    if triple and pair:
        raise DatasetError(
            f"{source}:{lineno}: a line is either a triple {_TRIPLE_KEYS} or a labelled pair "
            f"{_PAIR_KEYS}, not both (got keys {sorted(record)})"
        )
    if not (triple or pair):
        raise DatasetError(
            f"{source}:{lineno}: expected {_TRIPLE_KEYS} or {_PAIR_KEYS}, got keys {sorted(record)}"
        )
    extra = sorted(set(record) - (_TRIPLE if triple else _PAIR))
    if extra:  # e.g. "negatives": [...] would be dropped unread
        holds = f"{_TRIPLE_KEYS} (one line per negative)" if triple else _PAIR_KEYS
        raise DatasetError(
            f"{source}:{lineno}: unknown key{'s' if len(extra) > 1 else ''} "
            f"{', '.join(map(repr, extra))}: a line holds exactly {holds}"
        )
    if triple:
        positive = _text_field(record, "positive", source, lineno)
        return [(positive, 1), (_text_field(record, "negative", source, lineno), 0)]
    passage = _text_field(record, "passage", source, lineno)
    label = record.get("label")
    if isinstance(label, bool) or not isinstance(label, int):
        raise DatasetError(
            f'{source}:{lineno}: "label" must be an integer grade (> 0 relevant), got {label!r}'
        )
    return [(passage, label)]


def parse_training_jsonl(lines: Iterable[str], *, source: str = "train.jsonl") -> list[TrainQuery]:
    """Parse triples and/or labelled pairs (see the module docstring) into training queries.

    Raises:
        DatasetError: Invalid JSON, a line that is neither a triple nor a labelled pair (or is
            both, or has other keys, which would be dropped unread), a non-integer label, a
            passage both relevant and non-relevant for one query, or a query with no relevant
            passage, naming file and line.

    Example:
        >>> parse_training_jsonl(['{"query": "q", "positive": "p", "negative": "p"}'])
        Traceback (most recent call last):
        rerankkit.errors.DatasetError: train.jsonl:1: passage 'p' is given as relevant (line 1) and as non-relevant (line 1) for query 'q'
    """  # noqa: E501 (the real message)
    # query -> {passage: (highest grade, first line)}, both in order of first appearance; a
    # passage is relevant (grade > 0) or not for its query, never both
    gathered: dict[str, dict[str, tuple[int, int]]] = {}
    for lineno, record in json_lines(lines, source):
        if not isinstance(record, dict):
            raise DatasetError(
                f"{source}:{lineno}: expected a JSON object, got {type(record).__name__}"
            )
        query = _text_field(record, "query", source, lineno)
        passages = gathered.setdefault(query, {})
        for passage, grade in _graded_passages(record, source, lineno):
            earlier_grade, earlier_line = passages.get(passage, (grade, lineno))
            if (grade > 0) != (earlier_grade > 0):
                relevant, other = (lineno, earlier_line) if grade > 0 else (earlier_line, lineno)
                raise DatasetError(
                    f"{source}:{lineno}: passage {passage[:60]!r} is given as relevant (line "
                    f"{relevant}) and as non-relevant (line {other}) for query {query[:60]!r}"
                )
            passages[passage] = (max(grade, earlier_grade), earlier_line)
    out = []
    for query, passages in gathered.items():
        positives = {passage: grade for passage, (grade, _) in passages.items() if grade > 0}
        if not positives:
            first_line = min(line for _, line in passages.values())
            raise DatasetError(
                f"{source}:{first_line}: query {query[:60]!r} has no relevant passage "
                "(label > 0); every training query needs one"
            )
        negatives = tuple(passage for passage, (grade, _) in passages.items() if grade <= 0)
        grades = tuple(positives.values())
        out.append(TrainQuery(query, tuple(positives), negatives, query_id=query, grades=grades))
    return out


def load_training_jsonl(path: str | Path) -> list[TrainQuery]:
    """Read a JSONL training file (see :func:`parse_training_jsonl`).

    Raises:
        DatasetError: The file is missing, not UTF-8 text (e.g. compressed), holds no training
            line, or is malformed.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            queries = parse_training_jsonl(utf8_lines(handle, str(path)), source=str(path))
    except FileNotFoundError:
        raise DatasetError(f"missing file: {path}") from None
    if not queries:
        raise DatasetError(f"{path}: no training lines (the file is empty)")
    return queries


def count_pairs(queries: Sequence[TrainQuery]) -> dict[str, int]:
    """Queries, positives and negatives in a training set (for logs and the model card).

    Example:
        >>> count_pairs([TrainQuery("q", ("p",), ("n1", "n2"))])
        {'queries': 1, 'positives': 1, 'negatives': 2}
    """
    return {
        "queries": len(queries),
        "positives": sum(len(q.positives) for q in queries),
        "negatives": sum(len(q.negatives) for q in queries),
    }


def drop_positive_copies(queries: Sequence[TrainQuery]) -> tuple[list[TrainQuery], int]:
    """The queries without the negatives whose text is one of their own positives; and how many
    were dropped.

    A corpus holding an exact copy of a judged positive under another id makes the copy a
    negative (mined from the first stage, or judged 0 in the qrels): the model would be
    trained on ``(q, P, 1.0)`` and ``(q, P, 0.0)``, and on margin triples whose negative is
    the positive. Texts are compared after collapsing whitespace (a copy re-extracted with
    other line breaks is still a copy). Every negative of every source passes through here
    (judged, mined, JSONL), so the rule holds whatever built the negatives.

    Example:
        >>> q = TrainQuery("q", ("Paris is  the capital.",), ("Paris is the capital.", "Lyon"),
        ...                negative_ids=("copy", "d2"))
        >>> kept, dropped = drop_positive_copies([q])
        >>> kept[0].negatives, kept[0].negative_ids, dropped
        (('Lyon',), ('d2',), 1)
    """
    out, dropped = [], 0
    for query in queries:
        positives = {_normalized(text) for text in query.positives}
        keep = [_normalized(text) not in positives for text in query.negatives]
        if all(keep):
            out.append(query)
            continue
        dropped += keep.count(False)
        ids = query.negative_ids
        out.append(
            replace(
                query,
                negatives=tuple(t for t, k in zip(query.negatives, keep, strict=True) if k),
                negative_ids=tuple(d for d, k in zip(ids, keep, strict=True) if k)
                if len(ids) == len(keep)
                else ids,
            )
        )
    return out, dropped


def _normalized(text: str) -> str:
    return " ".join(text.split())


def load_training_data(
    source: str | Path, *, split: str = "train"
) -> tuple[list[TrainQuery], Dataset | None]:
    """Training queries from a BEIR folder (``qrels/<split>.tsv``) or a JSONL file.

    Returns:
        The training queries and, for a BEIR folder, the loaded collection (the miner searches
        its corpus); ``None`` for JSONL.

    Raises:
        DatasetError: ``source`` does not exist, or is malformed.
    """
    path = Path(source)
    if path.is_dir():
        dataset = load_beir(path, split=split)
        return queries_from_beir(dataset), dataset
    if path.is_file():
        return load_training_jsonl(path), None
    raise DatasetError(f"training data not found: {path} (a BEIR folder or a JSONL file)")
