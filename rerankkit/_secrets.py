"""API keys: cleaned and checked once where they enter, and cut out of every message.

A key read from a file or a Kubernetes secret often ends in a newline. Sent as is, h11 refuses
the ``Authorization`` header with a message that quotes the key (escaped: ``sk-1\\n``), the
failure is retried although it can never succeed, and a non-ASCII key fails later with a raw
``UnicodeEncodeError``. So every key (remote clients' ``api_key`` and their environment
variables, ``rerankkit serve``'s ``--api-key``/``$RERANKKIT_API_KEY``):

- loses its surrounding whitespace (no key starts or ends with a space on purpose; a
  whitespace-only key counts as no key);
- must then be printable ASCII (an HTTP header value; RFC 9110 section 5.5, RFC 6750's
  ``b64token``): anything else is refused before any request with a ``ValueError`` that names
  the argument or variable and the offending position, never the key;
- is redacted from every message in each form it can take there (:func:`redact`): as sent,
  ``repr``/JSON-escaped and percent-encoded.

Example:
    >>> clean_api_key("  sk-123\\n", "api_key").get_secret_value()
    'sk-123'
    >>> clean_api_key("sk-caf\\u00e9", "$CO_API_KEY")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: $CO_API_KEY holds a non-ASCII character at position 6, which an HTTP header ...
    >>> redact('token "sk-\\\\x" or sk-\\\\\\\\x', SecretStr("sk-\\\\x"))
    'token "***" or ***'
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from urllib.parse import quote

from pydantic import SecretStr

REDACTED = "***"


def clean_api_key(value: str | SecretStr | None, source: str) -> SecretStr | None:
    """``value`` stripped of surrounding whitespace, ``None`` when nothing is left.

    Args:
        value: The key as given (``str`` or ``SecretStr``) or ``None``.
        source: How the caller set it, for the error (``"api_key"``, ``"$CO_API_KEY"``).

    Raises:
        TypeError: ``value`` is not a str, SecretStr or None.
        ValueError: The key holds a character an HTTP header cannot carry (non-ASCII or a
            control character); the message names ``source`` and the position only.
    """
    if value is None:
        return None
    if not isinstance(value, (str, SecretStr)):
        raise TypeError(f"{source} must be a str or None, got {type(value).__name__}")
    key = (value.get_secret_value() if isinstance(value, SecretStr) else value).strip()
    if not key:
        return None
    for position, char in enumerate(key):
        if not " " <= char <= "~":
            kind = "a non-ASCII character" if ord(char) > 0x7F else "a control character"
            raise ValueError(
                f"{source} holds {kind} at position {position}, which an HTTP header cannot "
                "carry (the key is not shown); check the value you set"
            )
    return SecretStr(key)


def key_forms(key: str) -> list[str]:
    """Every form ``key`` can take in a message, longest first (see the module docstring).

    Example:
        >>> key_forms("a\\\\b/c")  # the key a\\b/c
        ['a%5Cb%2Fc', 'a\\\\\\\\b\\\\/c', 'a\\\\\\\\b/c', 'a\\\\b/c']
    """
    forms = {
        key,
        repr(key)[1:-1],
        json.dumps(key)[1:-1],
        json.dumps(key)[1:-1].replace("/", "\\/"),
        quote(key, safe=""),
    }
    return sorted(forms, key=lambda form: (-len(form), form))


def redact(text: str, key: SecretStr | None) -> str:
    """``text`` with every form of ``key`` replaced by ``***``."""
    if key is None:
        return text
    for form in key_forms(key.get_secret_value()):
        text = text.replace(form, REDACTED)
    return text


def secret_from_env(names: Sequence[str]) -> SecretStr | None:
    """The first environment variable of ``names`` that holds a key, cleaned (see
    :func:`clean_api_key`; an error names the variable).

    Example:
        >>> secret_from_env(["RERANKKIT_NO_SUCH_VARIABLE"]) is None
        True
    """
    for name in names:
        key = clean_api_key(os.environ.get(name), f"${name}")
        if key is not None:
            return key
    return None
