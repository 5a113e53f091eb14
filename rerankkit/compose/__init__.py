"""Composing rerankers: fusion, cascades, caching and the final context order.

- ``fusion``: :func:`rerankkit.reciprocal_rank_fusion`, ``fuse_runs``,
  :class:`rerankkit.FusionReranker`.
- ``cascade``: :class:`rerankkit.CascadeReranker` (each stage reranks the previous one's survivors).
- ``cache``: :class:`rerankkit.CachedReranker`, :class:`rerankkit.ScoreCache`.
- ``reorder``: :func:`rerankkit.lost_in_the_middle`.
- ``batching``: ``BatchingReranker`` (concurrent calls merged into shared model calls).

Everything here works on any :class:`rerankkit.Reranker` through its public methods and
capability flags; this layer imports only the core.
"""

__all__: list[str] = []
