"""Prompts for the LLM rerankers, kept as data.

Each reranker takes its prompt as a constructor argument (``prompt=...``) whose default is one
of these constants, so you can read, copy and override them per instance. Templates use
``str.format`` fields; the reranker checks at construction that a custom template has exactly
the fields it fills. The prompts are English and say nothing about the language of the text,
which is how they work unchanged for Korean (or any other language) queries and passages.

Example:
    >>> from rerankkit.llm._prompts import YES_NO_PROMPT, template_fields
    >>> sorted(template_fields(YES_NO_PROMPT))
    ['document', 'query']
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

#: Pointwise relevance judgement; the answer's first token is read as yes/no.
_PASSAGE_ID_LIKE = re.compile(r"\[(\s*\d+\s*)\]")
_WHITESPACE = re.compile(r"\s+")

YES_NO_PROMPT = (
    "Judge whether the passage is relevant to the search query, that is, whether it helps "
    "answer it. The query and passage may be in any language.\n\n"
    "<query>\n{query}\n</query>\n\n"
    "<passage>\n{document}\n</passage>\n\n"
    'Is the passage relevant to the query? Answer with exactly one word, "yes" or "no".'
)

#: Pointwise graded relevance on the scale ``[{low}, {high}]``.
RATING_PROMPT = (
    "Rate how relevant the passage is to the search query, on an integer scale from {low} "
    "(completely irrelevant) to {high} (perfectly answers the query). The query and passage "
    "may be in any language.\n\n"
    "<query>\n{query}\n</query>\n\n"
    "<passage>\n{document}\n</passage>\n\n"
    "Answer with the number only."
)

#: RankGPT-style listwise permutation prompt. ``{passages}`` is filled with one line per
#: passage, ``[i] text``, where i runs from 1 to ``{num}``.
LISTWISE_PROMPT = (
    "I will give you {num} passages, each introduced by a numerical identifier in square "
    "brackets at the start of its line. Rank them by relevance to the search query, most "
    "relevant first. The query and passages may be in any language.\n\n"
    "Search query: {query}\n\n"
    "{passages}\n\n"
    "Search query: {query}\n\n"
    "Rank all {num} passages by their identifiers, most relevant first, in the format "
    "[2] > [1] > [3]. Answer with the ranking only, no explanation."
)

#: Causal-LM scorer (Qwen3-Reranker style). Rendered as the user turn of the tokenizer's chat
#: template when it has one; the model's next-token "yes"/"no" logits give the score.
CAUSAL_LM_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
CAUSAL_LM_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
CAUSAL_LM_PROMPT = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
#: Used only when the tokenizer has no chat template.
CAUSAL_LM_PLAIN_SUFFIX = '\nIs the Document relevant? Answer "yes" or "no".\nAnswer:'


def template_fields(template: str) -> set[str]:
    """The ``str.format`` field names in ``template``.

    Example:
        >>> sorted(template_fields("{query} / {document}"))
        ['document', 'query']
    """
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def check_template(
    template: object, required: set[str], optional: set[str], *, name: str = "prompt"
) -> str:
    """Validate a prompt template: a str holding every required field and no unknown one.

    Raises:
        TypeError: ``template`` is not a str.
        ValueError: a field is missing or unknown (the message names them).
    """
    if not isinstance(template, str):
        raise TypeError(f"{name} must be a str template, got {type(template).__name__}")
    try:
        fields = template_fields(template)
    except ValueError as error:
        raise ValueError(f"{name} is not a valid str.format template: {error}") from None
    missing, unknown = required - fields, fields - required - optional
    if missing or unknown or "" in fields:
        raise ValueError(
            f"{name} must use the fields {sorted(required)} (optionally {sorted(optional)}); "
            f"missing {sorted(missing)}, unknown {sorted(f or '{}' for f in unknown)}"
        )
    return template


def passage_line(identifier: int, text: str, max_chars: int | None = None) -> str:
    """One passage as the model sees it: ``[id] text`` on a single line.

    Whitespace (newlines included) is collapsed so every line starts with its identifier, and
    bracketed numbers inside the passage become ``(n)``: the only ``[n]`` the model sees are
    real identifiers, so a passage cannot impersonate another one.

    Example:
        >>> passage_line(2, "See [1] and\\n[ 3 ].")
        '[2] See (1) and (3).'
    """
    clean = _WHITESPACE.sub(" ", text).strip()
    clean = _PASSAGE_ID_LIKE.sub(lambda m: f"({m.group(1).strip()})", clean)
    if max_chars is not None and len(clean) > max_chars:
        clean = clean[:max_chars].rstrip() + " ..."
    return f"[{identifier}] {clean}"


def format_passages(texts: Sequence[str], max_chars: int | None = None) -> str:
    """The ``{passages}`` block: identifiers 1..n, one per line."""
    return "\n".join(passage_line(i, text, max_chars) for i, text in enumerate(texts, start=1))
