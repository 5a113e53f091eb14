"""OpenVINO runtime for an exported cross-encoder (``rerankkit[openvino]``), CPU only.

OpenVINO compiles the cached ONNX file (``_onnx.ensure_onnx_model``) for this CPU with its own
fused kernels. Measured on the trained MiniLM-L6 cross-encoder (BENCHMARKS.md) its float32 mode
was the fastest exact CPU path (max |score difference| to PyTorch ~1e-6) and its bf16 mode, on
a CPU with native bf16, the fastest path that keeps the ranking. ``precision="bf16"`` on a CPU
without native bf16 is what OpenVINO makes of it (float32), so the probe and the rule in
``_fast_path`` only propose it where the CPU has the instructions.

``OpenVinoRunner`` has the call signature of the other runners: a dict of int64 arrays in,
float32 logits ``[batch, num_labels]`` out.

Example (``path`` from ``ensure_onnx_model``; ``ids``, ``mask``: int64 arrays)::

    runner = OpenVinoRunner(path, precision="f32", num_threads=2)
    runner({"input_ids": ids, "attention_mask": mask})  # float32 logits [batch, num_labels]
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from rerankkit._optional import require


class OpenVinoRunner:
    """Run an exported cross-encoder with OpenVINO on the CPU: ``runner(batch) -> [B, L]``.

    Args:
        path: ``.onnx`` file (float32 export).
        precision: ``"f32"`` (exact) or ``"bf16"`` (OpenVINO's inference precision hint).
        num_threads: inference threads; ``None`` = physical cores available to this process.

    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        precision: str = "f32",
        num_threads: int | None = None,
    ) -> None:
        ov = require("openvino", "openvino")
        from rerankkit.backends._speed import physical_core_count

        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": precision,
            # One request at a time, all cores on it: the reranker sends one batch at a time.
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(num_threads or physical_core_count()),
        }
        self.compiled: Any = core.compile_model(str(path), "CPU", config)
        self.request: Any = self.compiled.create_infer_request()
        # One infer request is one set of buffers: a second thread's infer() while it runs
        # raises "Infer Request is busy", and one that starts between another's infer() and its
        # copy of the output overwrites that output. Concurrent callers (arerank's worker
        # threads, a server without micro-batching) take turns.
        self._lock = threading.Lock()
        self.input_names: tuple[str, ...] = tuple(i.get_any_name() for i in self.compiled.inputs)
        self._output = self.compiled.outputs[0]

    def __call__(self, batch: Mapping[str, Any]) -> np.ndarray:
        feeds = {name: np.asarray(batch[name], dtype=np.int64) for name in self.input_names}
        with self._lock:
            result = self.request.infer(feeds)
            return np.array(result[self._output], dtype=np.float32)  # a copy: buffer reused
