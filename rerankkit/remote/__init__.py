"""Rerank services over HTTP, each a normal ``rerankkit.Reranker`` (extra ``remote``).

=======================  ============================  ====================  ==============
class                    spec                          endpoint              per request
=======================  ============================  ====================  ==============
``CohereReranker``       ``cohere:rerank-v3.5``        ``POST /v2/rerank``   1000 documents
``CohereV1Reranker``     ``cohere-v1:MODEL``           ``POST /v1/rerank``   1000
``JinaReranker``         ``jina:MODEL``                ``POST /v1/rerank``   1000
``VoyageReranker``       ``voyage:MODEL``              ``POST /v1/rerank``   1000
``MixedbreadReranker``   ``mixedbread:MODEL``          ``POST /v1/reranking`` 1000
``TEIReranker``          ``tei:http://host:8080``      ``POST /rerank``      32
``VLLMReranker``         ``vllm:http://host:8000``     ``POST /v1/rerank``   1000
                         (``?endpoint=score``)         or ``POST /score``
``InfinityReranker``     ``infinity:http://host:7997`` ``POST /rerank``      2048
=======================  ============================  ====================  ==============

Every client shares one HTTP core (``_http``: pooled httpx clients, per-attempt timeout,
``max_concurrency`` requests at once, tenacity retries with jittered exponential backoff that
honour ``Retry-After``). A larger input is split to the per-request limit, the chunks are sent
concurrently and merged back to the caller's positions; ``top_n`` and ``score_threshold`` are
applied by rerankkit after merging (each chunk asks the service for every score). An answer
that omits, repeats or invents an index, a malformed body, or a request that still fails after
its retries raises ``rerankkit.errors.RemoteServiceError`` (``service``, ``status``,
``body_excerpt``): never a partial ranking. API keys come from the argument or the service's
environment variable and never appear in ``repr``, logs or errors.

Example:
    >>> from rerankkit.remote import TEIReranker
    >>> TEIReranker("http://127.0.0.1:8080").max_documents
    32
"""

from __future__ import annotations

from rerankkit.remote._base import RemoteReranker
from rerankkit.remote._services import (
    CohereReranker,
    CohereV1Reranker,
    InfinityReranker,
    JinaReranker,
    MixedbreadReranker,
    TEIReranker,
    VLLMReranker,
    VoyageReranker,
)

__all__ = [
    "CohereReranker",
    "CohereV1Reranker",
    "InfinityReranker",
    "JinaReranker",
    "MixedbreadReranker",
    "RemoteReranker",
    "TEIReranker",
    "VLLMReranker",
    "VoyageReranker",
]
