"""The reranking stage of an evaluation on Ray Data: ``rerankkit eval --ray``.

:func:`rerank_run_on_ray` reranks the same candidates as :func:`rerankkit.eval.rerank_run`
but on a pool of Ray actors (:func:`rerankkit.distributed.rerank_dataset`), one row per query,
each actor loading the model once. Ray runs locally, or on the cluster ``RAY_ADDRESS`` or an
earlier ``ray.init`` points at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from rerankkit._optional import require
from rerankkit._renamed import renamed_arguments
from rerankkit._specs import RerankerSpec
from rerankkit.distributed import rerank_dataset
from rerankkit.eval._datasets import Dataset, Run
from rerankkit.eval._runs import Timing, candidates, rerank_groups, scored_run

logger = logging.getLogger(__name__)


@renamed_arguments(depth="top_n")
def rerank_run_on_ray(
    spec: str | RerankerSpec,
    dataset: Dataset,
    run: Mapping[str, Mapping[str, float]],
    *,
    top_n: int = 100,
    only_judged: bool = True,
    batch_size: int = 8,
    concurrency: int | tuple[int, int] | None = None,
    num_gpus: float = 0,
    desc: str = "rerank",
) -> tuple[Run, Timing]:
    """Rerank each query's top ``top_n`` candidates of ``run`` on Ray actors.

    The candidates, the queries left out and the run returned are those of
    :func:`rerankkit.eval.rerank_run`, and so are the scores (up to float rounding of
    differently padded model batches). Timing is the wall clock of the whole Ray job,
    starting the actors and loading the model in each included (``Timing.batched`` is
    ``True``: latencies are the total spread evenly over the queries).

    Args:
        spec: The reranker each actor builds (a spec string, see :mod:`rerankkit._specs`).
        dataset: The collection.
        run: The first-stage run to rerank.
        top_n: Candidates reranked per query.
        only_judged: Skip queries without judgments.
        batch_size: Queries per actor call.
        concurrency: Actors (see :func:`rerankkit.distributed.rerank_dataset`).
        num_gpus: GPUs per actor.
        desc: The label for the log line.

    Raises:
        RuntimeError: A query failed on its actor (every failed query id and error named).
        ValueError: A bad spec or argument.
        TypeError: ``depth=`` (renamed ``top_n``).
    """
    ray_data = require("ray.data", "ray")
    ranked = candidates(run, top_n)
    query_ids, groups = rerank_groups(dataset, ranked, only_judged=only_judged)
    rows = [
        {"position": i, "query": query, "documents": documents}
        for i, (query, documents) in enumerate(groups)
    ]
    start = time.perf_counter()
    output = rerank_dataset(
        ray_data.from_items(rows),
        spec,
        query_column="query",
        documents_column="documents",
        batch_size=batch_size,
        concurrency=concurrency,
        num_gpus=num_gpus,
    ).take_all()
    seconds = time.perf_counter() - start
    failed = [row for row in output if row["rerank_error"] is not None]
    if failed:
        raise RuntimeError(
            f"{desc}: {len(failed)} queries failed on Ray: "
            + "; ".join(f"{query_ids[row['position']]}: {row['rerank_error']}" for row in failed)
        )
    scores: list[list[float]] = [[] for _ in groups]
    for row in output:
        in_order = [0.0] * len(row["documents"])
        for index, score in zip(row["ranked_indices"], row["relevance_scores"], strict=True):
            in_order[index] = score
        scores[row["position"]] = in_order
    if len(output) != len(groups):  # rerank_dataset keeps every row; refuse to guess if not
        raise RuntimeError(f"{desc}: Ray returned {len(output)} rows for {len(groups)} queries")
    pairs = sum(len(documents) for _, documents in groups)
    latency = seconds * 1000.0 / max(1, len(query_ids))
    timing = Timing(len(query_ids), pairs, seconds, (latency,) * len(query_ids), batched=True)
    logger.info("%s on Ray: %d queries, %.1f pairs/s", desc, len(query_ids), pairs / seconds)
    return scored_run(ranked, query_ids, scores), timing
