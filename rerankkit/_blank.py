"""Which texts are empty: nothing a model could read, whatever the model.

A text is blank when every character is whitespace (``str.isspace``) or an invisible control
or format character (Unicode categories ``Cc`` and ``Cf``: U+200B zero width space, U+FEFF byte
order mark, U+00AD soft hyphen, U+2060 word joiner, the bidi marks U+200E/U+200F/U+202A-U+202E/
U+2066-U+2069, ...). Such a document scored as empty input (0.113 for the shared MiniLM
cross-encoder, above real irrelevant passages) while ``" "`` was flagged ``empty_document``.

Why a text rule and not the tokenizer's verdict: WordPiece drops these characters but a
byte-level BPE (LLMs, RoBERTa) turns each into tokens, and remote services and LLM rerankers
have no tokenizer here at all, so "tokenizes to nothing" would flag a document empty for one
backend and score it for another. A rule on the text is decided once, at the core's boundary,
and every backend, composition and adapter flags the same documents. ``Cc``/``Cf`` characters
carry no visible text in any script: ZWJ/ZWNJ inside words still count as text because the
letters around them are not blank.

Example:
    >>> is_blank("\\u200b\\ufeff \\u00ad\\u2060\\u200e"), is_blank(" "), is_blank("a\\u200b")
    (True, True, False)
"""

from __future__ import annotations

import unicodedata

_INVISIBLE = frozenset({"Cc", "Cf"})


def is_blank(text: str) -> bool:
    """Whether ``text`` holds only whitespace and invisible control/format characters.

    Stops at the first visible character, so a real document costs one or two checks.
    """
    return all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in text)
