"""Opt-in: ``InfinityReranker`` against a real Infinity server (third-party, ``infinity_emb``).

Not collected by a plain ``pytest`` run (the name does not match ``test_*.py``) and not part of
CI: ``infinity-emb[server,torch]`` pulls a CUDA build of torch (a 5.9 GB virtualenv here) and
the server takes about 50 s to start on 2 shared cores, beyond the CI budget. Run it by hand::

    python3 -m venv /tmp/infvenv
    /tmp/infvenv/bin/pip install "infinity-emb[server,torch]" "numpy<2"
    RERANKKIT_INFINITY_EMB=/tmp/infvenv/bin/infinity_emb HF_HUB_OFFLINE=1 \\
        .venv/bin/python -m pytest -q -p no:cacheprovider tests/infinity_server_check.py

It serves ``../shared/models/minilm-l6-msmarco-ce`` offline on 127.0.0.1 and checks that the
client's ranking and scores equal the in-process ``CrossEncoderReranker``'s (sigmoid scores,
and raw logits with ``raw_scores=True``), with the input split across requests.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from test_remote_against_serve import DOCS, QUERY  # the query and passages served there too

from conftest import TRAINED_CE
from rerankkit import CrossEncoderReranker
from rerankkit.remote import InfinityReranker


@pytest.fixture(scope="module")
def infinity() -> Iterator[str]:
    binary = os.environ.get("RERANKKIT_INFINITY_EMB")
    if not binary:
        pytest.skip("set RERANKKIT_INFINITY_EMB to an infinity_emb executable (opt-in check)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "v2", "--model-id", str(TRAINED_CE), "--engine", "torch"]
    command += ["--device", "cpu", "--host", "127.0.0.1", "--port", str(port)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, "infinity_emb exited while starting"
            assert time.monotonic() < deadline, "infinity_emb did not start within 300 s"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_infinity_ranks_as_in_process(infinity: str) -> None:
    local = CrossEncoderReranker(str(TRAINED_CE))
    expected = local.rerank(QUERY, DOCS)
    with InfinityReranker(infinity, max_documents=2) as client:  # 4 requests
        got = client.rerank(QUERY, DOCS)
        raw = client.score(QUERY, DOCS)
    with InfinityReranker(infinity, raw_scores=True) as client:
        logits = client.score(QUERY, DOCS)
    assert [r.index for r in got] == [r.index for r in expected]
    assert [r.score for r in got] == pytest.approx([r.score for r in expected], abs=1e-4)
    assert raw == pytest.approx(local.score(QUERY, DOCS), abs=1e-4)
    assert [1 / (1 + math.exp(-x)) for x in logits] == pytest.approx(raw, abs=1e-4)
