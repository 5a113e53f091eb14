"""The context step: prune retrieved documents to the sentences that answer a query, and pack
them into a token budget, with provenance for every kept character.

:class:`ContextPruner` scores sentences with any pointwise reranker and returns
:class:`PrunedDocument` objects; the pure parts (:func:`split_sentences`, the packing rules,
:func:`approximate_tokens`) need no model.

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> pruner = ContextPruner(KeywordReranker())
    >>> [d.to_dict() for d in pruner.prune("cats", ["Dogs bark. Cats purr."])]
    [{'index': 0, 'text': 'Cats purr.', 'spans': [[11, 21]], 'score': 1.0, 'tokens': 3, 'original_tokens': 6}]
"""  # noqa: E501 (the real output)

from rerankkit.context._pruner import ContextPruner, PrunedDocument
from rerankkit.context._sentences import split_sentences
from rerankkit.context._tokens import approximate_tokens

__all__ = ["ContextPruner", "PrunedDocument", "approximate_tokens", "split_sentences"]
