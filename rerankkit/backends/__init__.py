"""Model backends: one reranker per private module, with their Hugging Face, ONNX and tokenisation
helpers. Import the classes from ``rerankkit``; this package exports nothing itself.

- ``_cross_encoder``: :class:`rerankkit.CrossEncoderReranker` (sequence-classification models),
  with its CPU paths (``_fast_path``: the rule; ``_cpu_paths``: the probe; ``_onnx``,
  ``_openvino``: the converted runtimes; ``_speed``: CPU facts).
- ``_embedding``: :class:`rerankkit.EmbeddingReranker` (bi-encoder cosine; ``embed()``).
- ``_causal_lm``: :class:`rerankkit.CausalLMReranker` (P("yes") from a local causal LM).
- ``_late_interaction``, ``_token_store``: :class:`rerankkit.LateInteractionReranker` (ColBERT
  MaxSim) and :class:`rerankkit.TokenEmbeddingStore`.
- Shared: ``_hf`` (loading, devices, dtypes, the batched forward pass, the backends' base
  class), ``_pairs`` (truncation, chunks, length-sorted batches), ``_loading`` (untrained
  weights, pad tokens), ``_precision`` (float32 heads), ``_truncation`` (the cut notice),
  ``_devices`` (device checks).

Each backend's constructor checks its arguments once; the helpers trust what they are given.
Backends import the core and ``rerankkit.llm`` (prompts) only; nothing is imported eagerly, so
torch loads only when a backend is built.
"""

__all__: list[str] = []
