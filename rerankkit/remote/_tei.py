"""Hugging Face text-embeddings-inference (TEI): ``POST {base_url}/rerank``.

Sources: TEI's OpenAPI (``/docs`` of a running router) and the model cards that serve through
it: request ``{"query", "texts", "raw_scores"?, "return_text"?, "truncate"?,
"truncation_direction"?}``; answer a JSON list ``[{"index": int, "score": float, "text"?}]``.
TEI refuses more than ``--max-client-batch-size`` texts per request (default 32): our
default chunk size; raise ``max_documents`` to match a server started with a larger value.
TEI has no key variable of its own; a router started with ``--api-key`` wants
``Authorization: Bearer``: pass ``api_key``.

Score scale: with ``raw_scores=False`` (TEI's default) the model's logit through a sigmoid,
in [0, 1]; with ``raw_scores=True`` the raw logit.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankkit.remote._base import RemoteReranker


class TEIReranker(RemoteReranker):
    """A reranker served by text-embeddings-inference; spec ``tei:http://host:8080``.

    Args:
        base_url: The TEI router's address (``http://host:8080``).
        raw_scores: Ask for raw logits instead of sigmoid scores.
        truncate: Let TEI truncate pairs longer than the model's maximum length (otherwise it
            answers 413/422 for them; TEI's default is ``False``).
        **connection: ``api_key``, ``timeout``, ``max_documents`` (default 32), ... (see
            ``RemoteReranker``).

    Example:
        >>> TEIReranker("http://127.0.0.1:8080", truncate=True)
        TEIReranker(base_url='http://127.0.0.1:8080')
    """

    service = "tei"
    document_limit = 32
    documents_field = "texts"
    cut_field = None
    results_key = None
    score_key = "score"
    fixed_options: ClassVar[dict[str, Any]] = {"return_text": False}
    option_names = ("raw_scores", "truncate")

    def __init__(
        self, base_url: str, *, raw_scores: bool = False, truncate: bool = False, **connection: Any
    ) -> None:
        super().__init__(base_url=base_url, **connection)
        self.raw_scores = bool(raw_scores)
        self.truncate = bool(truncate)
