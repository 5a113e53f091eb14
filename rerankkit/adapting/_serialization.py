"""A reranker as adapters show and store it: a readable name for traces and event payloads
(:func:`reranker_name`) and a spec string for ``model_dump`` / ``to_dict``
(:func:`reranker_field_spec`), read back by :func:`rerankkit.adapting.as_reranker`.

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> reranker_field_spec(KeywordReranker())
    'keyword:'
    >>> as_reranker("keyword:")
    KeywordReranker()
"""

from __future__ import annotations

from rerankkit._base import Reranker
from rerankkit._specs import parse_spec, reranker_spec
from rerankkit.adapting._settings import as_reranker

__all__ = ["as_reranker", "reranker_field_spec", "reranker_name"]


def reranker_name(reranker: Reranker) -> str:
    """A short readable name: the spec label (kind, model folder name, options) when the
    reranker has a spec form, else its class name (``"LLMListwiseReranker"``).

    Example:
        >>> from rerankkit.testing import FixedScoreReranker, KeywordReranker
        >>> reranker_name(KeywordReranker()), reranker_name(FixedScoreReranker([0.5]))
        ('keyword', 'FixedScoreReranker')
    """
    try:
        return parse_spec(reranker_spec(reranker)).label
    except (TypeError, ValueError):
        return type(reranker).__name__


def reranker_field_spec(reranker: Reranker, field: str = "reranker") -> str:
    """``reranker`` as a spec string for an adapter's serialized ``field``.

    Raises:
        TypeError: The reranker has no spec form; the message names ``field``, the class and
            what to do instead (give the reranker as a spec or model name, or pickle).

    Example:
        >>> from rerankkit.testing import FixedScoreReranker
        >>> reranker_field_spec(FixedScoreReranker([0.5]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: reranker cannot be serialized: FixedScoreReranker cannot be described as a spec string ...
    """  # noqa: E501
    try:
        return reranker_spec(reranker)
    except TypeError as error:
        raise TypeError(
            f"{field} cannot be serialized: {error}. Only a reranker given as a spec string or "
            "model name (or built by a spec kind's class) has a dict/JSON form; pickle the "
            "adapter instead"
        ) from None
