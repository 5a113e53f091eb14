"""``RerankKitCrossEncoder``: a rerankkit pointwise backend as LangChain's ``BaseCrossEncoder``.

LangChain's tutorial recipe is ``CrossEncoderReranker(model=HuggingFaceCrossEncoder(...),
top_n=3)`` inside a ``ContextualCompressionRetriever``; swapping in rerankkit's cross-encoder
(length-sorted batches, chunking of long documents, bf16/ONNX speed-ups) is one line::

    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    compressor = CrossEncoderReranker(
        model=RerankKitCrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2"), top_n=3
    )

(``RerankKitCompressor`` does the same and more: scores in metadata, thresholds, tracing.)
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.cross_encoders import BaseCrossEncoder
from pydantic import BaseModel, ConfigDict

from rerankkit import Reranker
from rerankkit.adapting import PointwiseRerankerField, UnrankedField, score_pairs


class RerankKitCrossEncoder(BaseModel, BaseCrossEncoder):
    """LangChain's ``BaseCrossEncoder`` (``score(text_pairs) -> list[float]``) over any
    pointwise rerankkit reranker, or a cross-encoder built from a model name, path or spec.

    Scores are the reranker's (for ``CrossEncoderReranker`` a probability in [0, 1] by
    default); all pairs of one call are scored in one ``score_many`` call, grouped by query,
    so a cross-encoder batches them by length. A pair with an empty or whitespace query
    scores 0.0 (all equal; one warning per call), so LangChain's stable sort keeps those
    documents in retrieval order; ``on_empty_query="raise"`` raises ValueError instead.
    Pickles, and ``model_dump()`` writes the reranker as a spec string, as
    ``RerankKitCompressor`` does.

    Args:
        reranker: A pointwise ``rerankkit.Reranker`` (cross-encoder, bi-encoder, causal LM,
            pointwise LLM), a spec string, or a cross-encoder hub id / local folder.
        on_empty_query: ``"unranked"`` (default) or ``"raise"``.

    Raises:
        TypeError: ``reranker`` is not pointwise (a listwise LLM, a fusion: their scores
            depend on the other documents), or an unknown argument.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> RerankKitCrossEncoder(KeywordReranker()).score([("cat", "a dog"), ("cat", "a cat")])
        [0.0, 1.0]
    """

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, use_attribute_docstrings=True
    )

    reranker: PointwiseRerankerField
    """The pointwise backend."""

    on_empty_query: UnrankedField = "unranked"
    """A blank query's pairs: ``"unranked"`` (equal scores) or ``"raise"``."""

    def __init__(self, reranker: Reranker | str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(reranker=reranker, **kwargs)

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """One relevance score per ``(query, document)`` pair, in order (higher is better).

        Raises:
            TypeError: A pair is not two strings (its position named).
            ValueError: A blank query with ``on_empty_query="raise"``.
        """
        return score_pairs(self.reranker, text_pairs, on_empty_query=self.on_empty_query)
