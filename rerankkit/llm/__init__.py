"""LLM-as-reranker: everything between a prompt and a ranking, framework-free.

- ``protocol``: what an LLM must offer (``complete``, optional ``acomplete``); ``Completion``,
  ``FunctionLLM``.
- ``calls``: calling it reliably (concurrency limit, timeout, retries with backoff).
- ``prompts``: the prompts, kept as data, and how passages are written into them.
- ``parsing``: reading answers (reasoning blocks, permutations, yes/no, P(yes), ratings).
- ``windows``: sliding-window arithmetic for listwise reranking.
- ``pointwise``, ``listwise``: :class:`rerankkit.LLMPointwiseReranker`,
  :class:`rerankkit.LLMListwiseReranker`; ``factory``: :func:`rerankkit.llm_reranker`.

``parsing``, ``windows`` and ``prompts`` are pure functions, tested without an LLM. This layer
imports only the core.
"""
