"""Model backends: one reranker per file, with their Hugging Face, ONNX and tokenisation helpers.

- ``cross_encoder``: :class:`rerankkit.CrossEncoderReranker` (sequence-classification models).
- ``embedding``: :class:`rerankkit.EmbeddingReranker` (bi-encoder cosine; ``embed()``).
- ``causal_lm``: :class:`rerankkit.CausalLMReranker` (P("yes") from a local causal LM).
- ``_hf`` (loading, devices, dtypes), ``_onnx`` (export and cache), ``_pairs`` (truncation,
  chunks, length-sorted batches), ``_speed`` (CPU capability rules): private helpers.

Backends import the core and ``rerankkit.llm`` (prompts) only. Import the classes from
``rerankkit``; this package imports nothing eagerly, so torch loads only when a backend is built.
"""
