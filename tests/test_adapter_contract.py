"""One adapter contract, written once, run against the LangChain and the LlamaIndex adapter.

Each adapter is driven through a small `Driver` that knows only how to build the framework's
objects and read them back; every assertion below is shared. Expected orders come from
scores fixed by hand in the test (FixedScoreReranker), never from the adapter itself.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pydantic
import pytest
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

import langchain_rerankkit
import llamaindex_rerankkit
import rerankkit
from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import Reranker
from rerankkit._validation import check_choice, check_score_threshold, check_top_n
from rerankkit.testing import FixedScoreReranker, FunctionReranker, KeywordReranker


@dataclass(frozen=True)
class Spec:
    """One caller document, framework-neutral."""

    text: str
    id: str
    metadata: Mapping[str, Any]
    retrieval_score: float | None = None


@dataclass(frozen=True)
class Driver:
    name: str
    make: Callable[..., Any]  # (reranker, **fields) -> adapter
    wrap: Callable[[Spec], Any]  # spec -> the framework's caller object
    run: Callable[[Any, list[Any], str], list[Any]]
    arun: Callable[[Any, list[Any], str], Any]  # coroutine
    id: Callable[[Any], str]
    score: Callable[[Any], float]
    metadata: Callable[[Any], dict[str, Any]]
    model_text: Callable[[Any], str]  # the text the adapter must send to the model
    snapshot: Callable[[Any], Any]  # a deep, comparable copy of a caller object
    argument: str  # the name the adapter's errors use for the input list


LANGCHAIN = Driver(
    name="langchain",
    make=lambda reranker, **fields: RerankKitCompressor(reranker=reranker, **fields),
    wrap=lambda s: Document(page_content=s.text, metadata=dict(s.metadata), id=s.id),
    run=lambda adapter, objs, query: list(adapter.compress_documents(objs, query)),
    arun=lambda adapter, objs, query: adapter.acompress_documents(objs, query),
    id=lambda d: d.id,
    score=lambda d: d.metadata["relevance_score"],
    metadata=lambda d: d.metadata,
    model_text=lambda d: d.page_content,
    snapshot=lambda d: d.model_dump(),
    argument="documents",
)

LLAMAINDEX = Driver(
    name="llamaindex",
    make=lambda reranker, **fields: RerankKitPostprocessor(reranker=reranker, **fields),
    wrap=lambda s: NodeWithScore(
        node=TextNode(text=s.text, id_=s.id, metadata=dict(s.metadata)), score=s.retrieval_score
    ),
    run=lambda adapter, objs, query: adapter.postprocess_nodes(objs, query_str=query),
    arun=lambda adapter, objs, query: adapter.apostprocess_nodes(objs, query_str=query),
    id=lambda n: n.node.node_id,
    score=lambda n: n.score,
    metadata=lambda n: n.node.metadata,
    model_text=lambda n: n.node.get_content(metadata_mode=MetadataMode.EMBED),
    snapshot=lambda n: n.model_dump(),
    argument="nodes",
)


@pytest.fixture(params=[LANGCHAIN, LLAMAINDEX], ids=lambda d: d.name)
def driver(request: pytest.FixtureRequest) -> Driver:
    return request.param


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest, driver: Driver) -> Callable[..., Any]:
    """`await call(adapter, objs, query)` through the sync or the async entry point."""

    async def invoke(adapter: Any, objs: list[Any], query: str) -> list[Any]:
        if request.param == "sync":
            return driver.run(adapter, objs, query)
        return list(await driver.arun(adapter, objs, query))

    return invoke


SPECS = [
    Spec("solar panels on the roof", "d0", {"source": "a.txt", "page": 1}, 0.71),
    Spec("wind turbines offshore", "d1", {"source": "b.txt"}, 0.64),
    Spec("heat pumps in winter", "d2", {}, 0.55),
    Spec("hydro power from rivers", "d3", {"source": "c.txt", "tags": ["x"]}, 0.52),
    Spec("geothermal wells", "d4", {"source": "d.txt"}, None),
]
# Scores by input position; d1 and d3 tie, so the stable order is d1 before d3.
SCORES = [0.2, 0.9, 0.5, 0.9, 0.1]
BY_SCORE = ["d1", "d3", "d2", "d0", "d4"]


def objects(driver: Driver, specs: Sequence[Spec] = SPECS) -> list[Any]:
    return [driver.wrap(spec) for spec in specs]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"top_n": None}, BY_SCORE),
        ({"top_n": 2}, ["d1", "d3"]),
        ({"top_n": 3}, ["d1", "d3", "d2"]),
        ({"top_n": 50}, BY_SCORE),
        ({"top_n": None, "score_threshold": 0.5}, ["d1", "d3", "d2"]),  # >=, so 0.5 stays
        ({"top_n": 1, "score_threshold": 0.5}, ["d1"]),
        ({"top_n": 3, "score_threshold": 0.95}, []),
        ({"top_n": None, "reorder": "lost_in_the_middle"}, ["d1", "d2", "d4", "d0", "d3"]),
        ({"top_n": 3, "reorder": "lost_in_the_middle"}, ["d1", "d2", "d3"]),
    ],
)
async def test_order_cut_threshold_and_reorder(
    driver: Driver, call: Callable[..., Any], fields: dict[str, Any], expected: list[str]
) -> None:
    adapter = driver.make(FixedScoreReranker(SCORES), **fields)
    out = await call(adapter, objects(driver), "renewable energy")
    assert [driver.id(o) for o in out] == expected
    by_id = {spec.id: SCORES[i] for i, spec in enumerate(SPECS)}
    assert [driver.score(o) for o in out] == [by_id[driver.id(o)] for o in out]


def test_default_top_n_is_three(driver: Driver) -> None:
    out = driver.run(driver.make(FixedScoreReranker(SCORES)), objects(driver), "q")
    assert [driver.id(o) for o in out] == BY_SCORE[:3]


async def test_new_objects_carry_metadata_score_and_id(
    driver: Driver, call: Callable[..., Any]
) -> None:
    adapter = driver.make(FixedScoreReranker(SCORES), top_n=None)
    out = await call(adapter, objects(driver), "q")
    specs = {spec.id: spec for spec in SPECS}
    for obj in out:
        spec = specs[driver.id(obj)]
        metadata = driver.metadata(obj)
        score = metadata["relevance_score"]
        assert type(score) is float
        assert score == driver.score(obj)
        assert {k: v for k, v in metadata.items() if k != "relevance_score"} == dict(spec.metadata)


async def test_caller_objects_are_never_mutated(driver: Driver, call: Callable[..., Any]) -> None:
    caller = objects(driver)
    before = [driver.snapshot(o) for o in caller]
    adapter = driver.make(FixedScoreReranker(SCORES), top_n=None)
    out = await call(adapter, caller, "q")
    assert [driver.snapshot(o) for o in caller] == before
    caller_ids = {id(o) for o in caller} | {id(driver.metadata(o)) for o in caller}
    for obj in out:
        assert id(obj) not in caller_ids
        assert id(driver.metadata(obj)) not in caller_ids
    # Nested metadata is copied too: changing a result never reaches the caller's object.
    (tagged,) = [o for o in out if "tags" in driver.metadata(o)]
    driver.metadata(tagged)["tags"].append("changed")
    assert [driver.snapshot(o) for o in caller] == before


async def test_model_reads_the_documented_text(driver: Driver, call: Callable[..., Any]) -> None:
    seen: list[str] = []
    reranker = FunctionReranker(lambda q, d: seen.append(d) or 0.0)
    caller = objects(driver)
    await call(driver.make(reranker), caller, "q")
    assert seen == [driver.model_text(o) for o in caller]


class DetailReranker(Reranker):
    """Reports per-document extras, as a chunking or cascade backend does."""

    def _score(self, query: str, documents: list[str]) -> list[float]:
        return [float(len(d)) for d in documents]

    def _score_with_details(self, query: str, documents: list[str]) -> Any:
        details = [
            {"chunk_span": (0, len(d)), "stage_scores": [i, -i]} for i, d in enumerate(documents)
        ]
        return self._score(query, documents), details


async def test_backend_details_are_copied_into_metadata(
    driver: Driver, call: Callable[..., Any]
) -> None:
    caller = objects(driver)
    texts = {driver.id(o): driver.model_text(o) for o in caller}
    positions = {driver.id(o): i for i, o in enumerate(caller)}
    out = await call(driver.make(DetailReranker(), top_n=None), caller, "q")
    assert len(out) == len(caller)
    for obj in out:
        key = driver.id(obj)
        metadata = driver.metadata(obj)
        assert metadata["chunk_span"] == (0, len(texts[key]))
        assert metadata["stage_scores"] == [positions[key], -positions[key]]
        assert metadata["relevance_score"] == float(len(texts[key]))


async def test_empty_input_returns_empty_without_a_model_call(
    driver: Driver, call: Callable[..., Any]
) -> None:
    reranker = FixedScoreReranker([])
    assert await call(driver.make(reranker), [], "q") == []
    assert reranker.calls == 0


async def test_bad_input_is_rejected_naming_the_argument(
    driver: Driver, call: Callable[..., Any]
) -> None:
    reranker = FixedScoreReranker(SCORES)
    adapter = driver.make(reranker)
    good = objects(driver)
    with pytest.raises(TypeError, match=rf"{driver.argument}\[2\] must be a"):
        await call(adapter, [good[0], good[1], "plain text"], "q")
    with pytest.raises(TypeError, match=rf"{driver.argument} must be a sequence"):
        await call(adapter, "plain text", "q")
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        await call(driver.make(reranker, on_empty_query="raise"), good, "   ")
    assert reranker.calls == 0


@pytest.mark.parametrize("query", ["", "  \n\t"])
async def test_empty_query_returns_unranked_in_retrieval_order_marked(
    driver: Driver, call: Callable[..., Any], query: str, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = FixedScoreReranker(SCORES)
    caller = objects(driver)
    before = [driver.snapshot(o) for o in caller]
    with caplog.at_level("WARNING", logger="rerankkit.adapting._rerank"):
        out = await call(driver.make(reranker, top_n=3, score_threshold=100.0), caller, query)
    assert [driver.id(o) for o in out] == [driver.id(o) for o in caller[:3]]  # no threshold
    for original, returned in zip(caller, out, strict=False):
        metadata = driver.metadata(returned)
        assert metadata["reranked"] is False and "relevance_score" not in metadata
        assert {k: metadata[k] for k in driver.metadata(original)} == driver.metadata(original)
    assert [driver.snapshot(o) for o in caller] == before  # the caller's objects untouched
    assert reranker.calls == 0
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "not reranked" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"top_n": 0}, ValueError, "top_n must be >= 1"),
        ({"top_n": -3}, ValueError, "top_n must be >= 1"),
        # a wrong type is a ValidationError like a wrong value (issue 27)
        ({"top_n": True}, pydantic.ValidationError, "top_n must be an int"),
        ({"top_n": "3"}, pydantic.ValidationError, "top_n must be an int"),
        ({"top_n": 2.5}, pydantic.ValidationError, "top_n must be an int"),
        ({"score_threshold": math.nan}, ValueError, "score_threshold must not be NaN"),
        ({"score_threshold": "high"}, pydantic.ValidationError, "score_threshold must be a number"),
        ({"reorder": "middle"}, ValueError, "reorder must be one of"),
    ],
)
def test_bad_options_fail_at_construction_and_assignment(
    driver: Driver, fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        driver.make(FixedScoreReranker(SCORES), **fields)
    adapter = driver.make(FixedScoreReranker(SCORES))
    with pytest.raises(error, match=message):
        for name, value in fields.items():
            setattr(adapter, name, value)


# --- each argument is checked once, where it enters ----------------------------------------

OUR_PACKAGES = tuple(
    str(Path(package.__file__).parent)
    for package in (rerankkit, langchain_rerankkit, llamaindex_rerankkit)
)


def raise_sites(error: BaseException) -> list[str]:
    """Where each exception reachable from ``error`` (``__cause__``, ``__context__``, and the
    errors a pydantic ``ValidationError`` wraps) was raised, when that is in our packages: the
    innermost frame of its traceback, as ``file:function``. The frames above it only let it
    through."""
    sites: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        frames: list[FrameType] = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        if frames and frames[-1].f_code.co_filename.startswith(OUR_PACKAGES):
            code = frames[-1].f_code
            sites.append(f"{Path(code.co_filename).name}:{code.co_name}")
        todo += [exc.__cause__, exc.__context__]
        if isinstance(exc, pydantic.ValidationError):
            todo += [detail.get("ctx", {}).get("error") for detail in exc.errors()]
    return sites


@pytest.mark.parametrize(
    ("bad", "error"), [(0, pydantic.ValidationError), (2.5, pydantic.ValidationError)]
)
def test_a_bad_top_n_has_one_raise_site(driver: Driver, bad: Any, error: type) -> None:
    with pytest.raises(error, match="top_n must be") as at_construction:
        driver.make(KeywordReranker(), top_n=bad)
    adapter = driver.make(KeywordReranker())
    with pytest.raises(error, match="top_n must be") as at_assignment:
        adapter.top_n = bad
    for caught in (at_construction, at_assignment):
        (site,) = raise_sites(caught.value)  # one check raised; nothing re-raised it
        assert site.startswith("_validation.py:")
    assert adapter.top_n == 3


class CheckCounter:
    """Counts, with ``sys.setprofile``, the calls of each setting's check function."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        if frame.f_code is check_top_n.__code__:
            self.calls["top_n"] += 1
        elif frame.f_code is check_score_threshold.__code__:
            self.calls["score_threshold"] += 1
        elif frame.f_code is check_choice.__code__:
            self.calls[str(frame.f_locals.get("argument"))] += 1


async def test_a_construction_and_one_call_check_each_setting_once(
    driver: Driver, call: Callable[..., Any]
) -> None:
    caller = objects(driver)
    counter = CheckCounter()
    sys.setprofile(counter)
    try:
        adapter = driver.make(
            KeywordReranker(),
            top_n=2,
            score_threshold=0.5,
            reorder="none",
            on_empty_query="unranked",
            on_reranker_error="unranked",
        )
        out = await call(adapter, caller, "solar panels")
    finally:
        sys.setprofile(None)
    assert [driver.id(o) for o in out] == ["d0"]
    checked = ("top_n", "score_threshold", "reorder", "on_empty_query", "on_reranker_error")
    assert {name: counter.calls[name] for name in checked} == dict.fromkeys(checked, 1)


def test_old_spellings_of_unranked_are_refused_naming_it(driver: Driver) -> None:
    for field, old in [("on_empty_query", "retrieval_order"), ("on_reranker_error", "fallback")]:
        with pytest.raises(ValueError, match=f"{field}='{old}' was renamed 'unranked'"):
            driver.make(KeywordReranker(), **{field: old})
    adapter = driver.make(KeywordReranker(), on_empty_query="raise", on_reranker_error="raise")
    assert (adapter.on_empty_query, adapter.on_reranker_error) == ("raise", "raise")


def test_bad_reranker_is_rejected(driver: Driver) -> None:
    with pytest.raises(TypeError, match=r"reranker must be a rerankkit\.Reranker"):
        driver.make(42)
    with pytest.raises(ValueError, match="reranker model name or path must be a non-empty"):
        driver.make("  ")


class GatedReranker(Reranker):
    """Native async scorer that finishes only once `expected` calls are in flight at once.

    If an adapter ran its async path on the event loop's thread or through the sync path,
    the calls could not overlap and the gate would time out.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.gate: asyncio.Event | None = None

    def _score(self, query: str, documents: list[str]) -> list[float]:
        raise AssertionError("the async path must not fall back to the sync scorer")

    async def _ascore_with_details(self, query: str, documents: list[str]) -> Any:
        self.gate = self.gate or asyncio.Event()
        self.in_flight += 1
        if self.in_flight == self.expected:
            self.gate.set()
        await asyncio.wait_for(self.gate.wait(), timeout=5)
        return [float(len(d)) for d in documents], None


async def test_async_is_native_and_concurrent(driver: Driver) -> None:
    reranker = GatedReranker(expected=3)
    adapter = driver.make(reranker, top_n=2)
    caller = objects(driver)
    outs = await asyncio.gather(*(driver.arun(adapter, caller, q) for q in ["a", "b", "c"]))
    longest = sorted(SPECS, key=lambda s: -len(driver.model_text(driver.wrap(s))))[:2]
    for out in outs:
        assert [driver.id(o) for o in out] == [s.id for s in longest]


def test_model_name_string_builds_a_cross_encoder(driver: Driver, tiny_cross_encoder: Path) -> None:
    from rerankkit import CrossEncoderReranker

    caller = objects(driver)
    direct = CrossEncoderReranker(tiny_cross_encoder).rerank(
        "renewable energy", [driver.model_text(o) for o in caller]
    )
    for name in (str(tiny_cross_encoder), tiny_cross_encoder):
        adapter = driver.make(name, top_n=None)
        reranker = adapter.reranker
        assert isinstance(reranker, CrossEncoderReranker)
        out = driver.run(adapter, caller, "renewable energy")
        assert [driver.id(o) for o in out] == [driver.id(caller[r.index]) for r in direct]
        assert [driver.score(o) for o in out] == pytest.approx([r.score for r in direct], abs=1e-6)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("langchain_rerankkit", ("llama_index", "llamaindex_rerankkit", "torch", "transformers")),
        ("llamaindex_rerankkit", ("langchain", "langchain_rerankkit", "torch", "transformers")),
    ],
)
def test_adapter_imports_neither_the_other_framework_nor_torch(
    package: str, forbidden: tuple[str, ...]
) -> None:
    code = (
        f"import sys, {package}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(bad)\n"
        "raise SystemExit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
