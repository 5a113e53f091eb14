"""Seconds per default-path ``CrossEncoderReranker`` construction once the CPU path choice is
cached, with and without the per-process cache of ``_cpu_paths._runtime_versions`` (which reads
every installed distribution's RECORD through ``importlib.metadata.packages_distributions``).
The two are interleaved in one process, on a tiny random cross-encoder in a fresh cache.

Usage (from the repository root, about a minute)::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/construction_overhead.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["RERANKKIT_CACHE"] = tempfile.mkdtemp()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import rerankkit.backends._cpu_paths as cpu_paths
from conftest import build_tiny_bert
from rerankkit import CrossEncoderReranker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    rounds = parser.parse_args().rounds
    model = build_tiny_bert(Path(tempfile.mkdtemp()) / "ce")
    cached = cpu_paths._runtime_versions
    versions = {"uncached": cached.__wrapped__, "cached": cached}
    CrossEncoderReranker(model, max_length=64)  # converts and measures once
    seconds: dict[str, list[float]] = {name: [] for name in versions}
    for _ in range(rounds):
        for name, function in versions.items():
            cpu_paths._runtime_versions = function  # type: ignore[assignment]
            start = time.perf_counter()
            reranker = CrossEncoderReranker(model, max_length=64)
            seconds[name].append(time.perf_counter() - start)
    for name, values in seconds.items():
        print(f"{name:>8}: {', '.join(f'{v:.2f}' for v in values)} s ({reranker.cpu_path})")


if __name__ == "__main__":
    main()
