"""Which sentences to keep, and the pruned text they make: pure functions, no model.

:func:`choose` decides from the sentence scores (a token budget over every document, a
threshold, or the adaptive default); :func:`render` turns one document's kept sentences into
its pruned text and kept spans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Span = tuple[int, int]


def render(
    text: str, sentences: Sequence[Span], kept: Sequence[int], marker: str
) -> tuple[str, list[Span]]:
    """The pruned text of one document and its kept spans.

    Kept sentences that follow each other become one span (the text between them kept as it
    was); each run of dropped sentences between two kept ones becomes one ``marker``. So the
    text is always ``marker.join(text[start:end] for start, end in spans)``.

    Args:
        text: The original document.
        sentences: Its sentence spans, in order (:func:`split_sentences`).
        kept: Indices into ``sentences`` to keep, in any order.
        marker: What stands for a run of dropped sentences.

    Example:
        >>> text = "One. Two. Three. Four."
        >>> render(text, [(0, 4), (5, 9), (10, 16), (17, 22)], [3, 0, 1], " … ")
        ('One. Two. … Four.', [(0, 9), (17, 22)])
    """
    spans: list[Span] = []
    previous = -2
    for index in sorted(set(kept)):
        start, end = sentences[index]
        if index == previous + 1:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
        previous = index
    return marker.join(text[start:end] for start, end in spans), spans


def adaptive(scores: Sequence[float], margin: float) -> list[bool]:
    """Keep each score within ``margin`` of the spread from the best one.

    A sentence is kept when ``best - score <= margin * (best - worst)``: scale-free (the same
    choice for logits or probabilities of one model), and adaptive: one sentence when the best
    stands out, several when many score close to it. The best is always kept.

    Example:
        >>> adaptive([0.9, 0.1, 0.85, 0.0], 0.25)
        [True, False, True, False]
    """
    if not scores:
        return []
    best, worst = max(scores), min(scores)
    return [best - score <= margin * (best - worst) for score in scores]


def choose(
    scores: Sequence[Sequence[float]],
    *,
    budget: int | None,
    threshold: float | None,
    margin: float,
    tokens: Callable[[int, list[int]], int],
) -> list[list[int]]:
    """The sentences to keep in each document (indices, sorted).

    - ``threshold``: only sentences scoring ``>= threshold`` are candidates;
    - ``budget``: the best candidates across ALL documents are added, best first, while the
      total ``tokens`` of the pruned documents stays ``<= budget``; a sentence that does not
      fit is skipped and smaller ones after it may still fit (ties: document order, then
      sentence order);
    - neither: :func:`adaptive` over all the sentences, with ``margin``.

    Args:
        scores: One list of sentence scores per document.
        budget: Total tokens, or ``None``.
        threshold: Minimum sentence score, or ``None``.
        margin: The adaptive rule's margin (used when both are ``None``).
        tokens: ``tokens(document, kept)``: the tokens of that document pruned to ``kept``
            (0 when ``kept`` is empty).

    Example:
        >>> sizes = [[5, 5, 5], [5]]
        >>> count = lambda doc, kept: sum(sizes[doc][i] for i in kept)
        >>> choose([[0.1, 0.9, 0.5], [0.7]], budget=10, threshold=None, margin=0.0, tokens=count)
        [[1], [0]]
        >>> choose([[0.1, 0.9, 0.5], [0.7]], budget=None, threshold=0.5, margin=0.0, tokens=count)
        [[1, 2], [0]]
    """
    flat = [(score, d, s) for d, doc in enumerate(scores) for s, score in enumerate(doc)]
    if budget is None and threshold is None:
        keep = adaptive([score for score, _, _ in flat], margin)
        flat = [item for item, kept in zip(flat, keep, strict=True) if kept]
    elif threshold is not None:
        flat = [item for item in flat if item[0] >= threshold]
    kept: list[list[int]] = [[] for _ in scores]
    if budget is None:
        for _, d, s in flat:
            kept[d].append(s)
        return [sorted(k) for k in kept]
    used = [0] * len(scores)
    total = 0
    for _, d, s in sorted(flat, key=lambda item: (-item[0], item[1], item[2])):
        trial = sorted([*kept[d], s])
        size = tokens(d, trial)
        if total - used[d] + size <= budget:
            kept[d], total, used[d] = trial, total - used[d] + size, size
    return kept
