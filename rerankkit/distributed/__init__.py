"""Scale out on Ray: rerank a large ``ray.data.Dataset`` on a pool of actors (issue 13).

- :func:`rerank_dataset` adds ``ranked_indices``, ``relevance_scores`` and ``rerank_error``
  columns to every row (``_rows`` is the pure per-batch logic each actor runs);
- :func:`rerank_deployment` deploys the ``rerankkit serve`` app on Ray Serve replicas.

Importing this package does not import Ray: Ray loads when a function here is called
(``pip install "rerankkit[ray]"``).
"""

from __future__ import annotations

from rerankkit.distributed._dataset import rerank_dataset
from rerankkit.distributed._serve import rerank_deployment

__all__ = ["rerank_dataset", "rerank_deployment"]
