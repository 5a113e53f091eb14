"""``ContextPruner``: the same reranker that orders the documents scores their sentences, and
a token budget decides what reaches the LLM (:class:`PrunedDocument` keeps the provenance).

Provence-family pruners (naver/provence-reranker-debertav3-v1, XProvence, OpenProvence) are
not loaded here: their public ``config.json`` declares ``"model_type": "Provence"`` with an
``auto_map`` to remote code (``modeling_provence.py``), a type transformers does not know, so
even ``AutoConfig`` needs ``trust_remote_code=True``, which rerankkit never sets (it runs code
from the hub); their per-token keep head exists only in that code. Any sequence-classification
cross-encoder works as the sentence scorer instead (docs/context.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rerankkit._base import Reranker
from rerankkit._validation import check_documents, check_int, check_number, check_query
from rerankkit.context._packing import Span, choose, render
from rerankkit.context._sentences import split_sentences
from rerankkit.context._tokens import token_counter

logger = logging.getLogger(__name__)

DEFAULT_MARKER = " … "
DEFAULT_MARGIN = 0.25
"""The adaptive rule's margin (see ``ContextPruner``); chosen by ``benchmarks/context_eval.py``."""
DEFAULT_CONTEXT_SENTENCES = 0
"""Neighbours scored with a sentence; chosen by ``benchmarks/context_eval.py``."""


@dataclass(frozen=True, slots=True)
class PrunedDocument:
    """One document after pruning. Every field is JSON-safe (``to_dict()``).

    ``text == marker.join(original[start:end] for start, end in spans)``.
    """

    index: int
    """Position of the document in the caller's input."""
    text: str
    """The pruned text: kept runs of sentences joined by the marker (default ``" … "``)."""
    spans: tuple[tuple[int, int], ...]
    """Kept ``(start, end)`` character offsets into the caller's document, in order, never
    overlapping (one span per run of kept sentences, the whitespace between them included)."""
    score: float
    """The document's relevance: the score of its best sentence (on the reranker's scale)."""
    tokens: int
    """Tokens of ``text``."""
    original_tokens: int
    """Tokens of the caller's document."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON types (spans as lists of two ints).

        Example:
            >>> PrunedDocument(0, "a", ((0, 1),), 1.0, 1, 2).to_dict()["spans"]
            [[0, 1]]
        """
        values = asdict(self)
        values["spans"] = [list(span) for span in self.spans]
        return values


class ContextPruner:
    """Prunes documents to the sentences that answer a query and packs them into a budget.

    Each document is split into sentences (pysbd; :func:`rerankkit.context.split_sentences`),
    every sentence of every document is scored against the query in one batched ``score``
    call of a pointwise reranker, and then, for :meth:`prune`:

    - ``budget_tokens``: the best sentences across ALL documents are kept while the pruned
      documents' tokens together stay within the budget (counted with ``tokenizer``, marker
      included);
    - ``threshold``: every sentence scoring ``>= threshold`` (the reranker's scale);
    - neither: the adaptive default, every sentence with ``best - score <= margin * (best -
      worst)`` over all the sentences of the call (``margin=0.25``, chosen by
      ``benchmarks/context_eval.py``).

    Both may be given: the threshold picks candidates, the budget packs them. Inside a
    document the kept sentences keep their order; a run of dropped sentences becomes one
    ``marker``. A document with nothing kept (an empty one included) is left out: the
    difference between ``len(documents)`` and ``len(result)`` counts them.

    Args:
        reranker: A pointwise ``Reranker`` (or a spec string such as ``"cross-encoder:PATH"``).
        tokenizer: How tokens are counted: ``None`` (the reranker's own Hugging Face
            tokenizer where it has one, else :func:`rerankkit.context.approximate_tokens`),
            a Hugging Face tokenizer, its folder or hub id, or a callable ``str -> int``.
        context_sentences: Neighbours on each side scored with a sentence (the text scored is
            the window; its score is the sentence's). ``0`` measured best (see
            ``BENCHMARKS.md``).
        margin: The adaptive default's margin, ``>= 0``.
        marker: Text standing for each run of dropped sentences.

    Raises:
        TypeError: ``reranker`` is not pointwise, or an argument of the wrong type.
        ValueError: A negative ``context_sentences`` or ``margin``.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> pruner = ContextPruner(KeywordReranker())
        >>> doc = "Cats purr. Dogs bark. Fig. 2 shows cats sleep."
        >>> [(d.text, d.spans, d.score) for d in pruner.prune("cats", [doc, "Birds sing."])]
        [('Cats purr. … Fig. 2 shows cats sleep.', ((0, 10), (22, 46)), 1.0)]
        >>> pruner.prune("cats", [doc], budget_tokens=4)[0].text
        'Cats purr.'
    """

    def __init__(
        self,
        reranker: Reranker | str,
        *,
        tokenizer: Any = None,
        context_sentences: int = DEFAULT_CONTEXT_SENTENCES,
        margin: float = DEFAULT_MARGIN,
        marker: str = DEFAULT_MARKER,
    ) -> None:
        if isinstance(reranker, str):
            from rerankkit._specs import build_reranker

            reranker = build_reranker(reranker)
        if not isinstance(reranker, Reranker):
            raise TypeError(f"reranker must be a rerankkit Reranker, got {type(reranker).__name__}")
        if not reranker.pointwise:
            raise TypeError(
                f"reranker must be pointwise (score each sentence alone), got "
                f"{type(reranker).__name__}"
            )
        if not isinstance(marker, str):
            raise TypeError(f"marker must be a str, got {type(marker).__name__}")
        self.reranker = reranker
        self.context_sentences: int = check_int(context_sentences, "context_sentences", minimum=0)
        self.margin: float = check_number(margin, "margin", minimum=0)
        self.marker = marker
        self.count_tokens = token_counter(tokenizer, reranker)

    def __repr__(self) -> str:
        return (
            f"ContextPruner({self.reranker!r}, context_sentences={self.context_sentences}, "
            f"margin={self.margin}, marker={self.marker!r})"
        )

    def prune(
        self,
        query: str,
        documents: Sequence[str],
        *,
        budget_tokens: int | None = None,
        threshold: float | None = None,
    ) -> list[PrunedDocument]:
        """Prune ``documents`` for ``query`` (see the class docstring for what is kept).

        Args:
            query: The query.
            documents: The documents (``str``), e.g. the reranker's top documents.
            budget_tokens: Total tokens of all pruned documents together, ``>= 1``.
            threshold: Minimum sentence score (finite).

        Returns:
            The documents with something kept, best first (by ``score``; ties in input
            order).

        Raises:
            TypeError, ValueError: A bad argument (named). Whatever the reranker raises.
        """
        query, documents, budget_tokens, threshold = _checked(
            query, documents, budget_tokens, threshold
        )
        sentences, windows = self._sentences(documents)
        scores = self.reranker.score(query, windows) if windows else []
        return self._pack(
            documents, sentences, _per_document(sentences, scores), budget_tokens, threshold
        )

    async def aprune(
        self,
        query: str,
        documents: Sequence[str],
        *,
        budget_tokens: int | None = None,
        threshold: float | None = None,
    ) -> list[PrunedDocument]:
        """Async :meth:`prune`: the scoring runs as the reranker's ``ascore`` (off the loop)."""
        query, documents, budget_tokens, threshold = _checked(
            query, documents, budget_tokens, threshold
        )
        sentences, windows = self._sentences(documents)
        scores = await self.reranker.ascore(query, windows) if windows else []
        return self._pack(
            documents, sentences, _per_document(sentences, scores), budget_tokens, threshold
        )

    def sentence_scores(self, query: str, documents: Sequence[str]) -> list[list[float]]:
        """The score of every sentence of every document (one list per document, in order),
        as :meth:`prune` computes them; :meth:`select` then packs them at any budget without
        scoring again (what ``rerankkit eval-context`` does).

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> ContextPruner(KeywordReranker()).sentence_scores("cats", ["Cats. Dogs.", ""])
            [[1.0, 0.0], []]
        """
        query, documents, _, _ = _checked(query, documents, None, None)
        sentences, windows = self._sentences(documents)
        return _per_document(sentences, self.reranker.score(query, windows) if windows else [])

    def select(
        self,
        documents: Sequence[str],
        scores: Sequence[Sequence[float]],
        *,
        budget_tokens: int | None = None,
        threshold: float | None = None,
    ) -> list[PrunedDocument]:
        """:meth:`prune`'s choice from given sentence scores (:meth:`sentence_scores`'s shape).

        Raises:
            ValueError: ``scores`` does not hold one score per sentence of each document.

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> pruner = ContextPruner(KeywordReranker())
            >>> [d.text for d in pruner.select(["Cats. Dogs."], [[0.0, 2.0]], budget_tokens=2)]
            ['Dogs.']
        """
        _, documents, budget_tokens, threshold = _checked("-", documents, budget_tokens, threshold)
        sentences = [split_sentences(document) for document in documents]
        shape = [len(spans) for spans in sentences]
        given = [len(doc_scores) for doc_scores in scores]
        if given != shape:
            raise ValueError(f"scores must hold {shape} sentence scores per document, got {given}")
        checked = [[float(score) for score in doc_scores] for doc_scores in scores]
        return self._pack(documents, sentences, checked, budget_tokens, threshold)

    def _sentences(self, documents: list[str]) -> tuple[list[list[Span]], list[str]]:
        """Each document's sentence spans, and the texts to score (one per sentence)."""
        sentences = [split_sentences(document) for document in documents]
        k = self.context_sentences
        windows = [
            document[spans[max(0, i - k)][0] : spans[min(len(spans) - 1, i + k)][1]]
            for document, spans in zip(documents, sentences, strict=True)
            for i in range(len(spans))
        ]
        return sentences, windows

    def _pack(
        self,
        documents: list[str],
        sentences: list[list[Span]],
        scores: list[list[float]],
        budget: int | None,
        threshold: float | None,
    ) -> list[PrunedDocument]:
        memo: dict[tuple[int, tuple[int, ...]], int] = {}

        def tokens(d: int, kept: list[int]) -> int:
            key = (d, tuple(kept))
            if key not in memo:
                text = render(documents[d], sentences[d], kept, self.marker)[0]
                memo[key] = self.count_tokens(text) if kept else 0
            return memo[key]

        chosen = choose(
            scores, budget=budget, threshold=threshold, margin=self.margin, tokens=tokens
        )
        pruned = []
        for d, kept in enumerate(chosen):
            if not kept:
                continue
            text, spans = render(documents[d], sentences[d], kept, self.marker)
            pruned.append(
                PrunedDocument(
                    index=d,
                    text=text,
                    spans=tuple(spans),
                    score=max(scores[d][i] for i in kept),
                    tokens=tokens(d, kept),
                    original_tokens=self.count_tokens(documents[d]),
                )
            )
        logger.debug("kept %d of %d documents", len(pruned), len(documents))
        return sorted(pruned, key=lambda p: (-p.score, p.index))


def _per_document(sentences: list[list[Span]], flat: Sequence[float]) -> list[list[float]]:
    scores, at = [], 0
    for spans in sentences:
        scores.append([float(s) for s in flat[at : at + len(spans)]])
        at += len(spans)
    return scores


def _checked(
    query: Any, documents: Any, budget_tokens: Any, threshold: Any
) -> tuple[str, list[str], int | None, float | None]:
    return (
        check_query(query),
        check_documents(documents),
        check_int(budget_tokens, "budget_tokens", minimum=1, optional=True),
        check_number(threshold, "threshold", optional=True),
    )
