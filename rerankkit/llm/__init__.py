"""LLM-as-reranker: everything between a prompt and a ranking, framework-free.

The public names live in :mod:`rerankkit` (``LLMListwiseReranker``, ``LLMPointwiseReranker``,
``llm_reranker``, ``Completion``, ``CompletionLLM``, ``AsyncCompletionLLM``, ``FunctionLLM``;
``RetryPolicy`` for how each call is made); this package exports nothing of its own.

- ``_protocol``: what an LLM must offer (``complete``, optional ``acomplete``).
- ``_calls``: calling it reliably (concurrency bound, timeout, ``rerankkit.RetryPolicy``).
- ``_prompts``: the prompts, kept as data, and how passages are written into them.
- ``_parsing``: reading answers (reasoning blocks, permutations, yes/no, P(yes), ratings).
- ``_windows``: sliding-window arithmetic for listwise reranking.
- ``_pointwise``, ``_listwise``: the rerankers; ``_factory``: :func:`rerankkit.llm_reranker`.

``_parsing``, ``_windows`` and ``_prompts`` are pure functions, tested without an LLM. This
layer imports only the core.
"""

__all__: list[str] = []
