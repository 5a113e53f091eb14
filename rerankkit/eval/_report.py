"""What an evaluation measured, and its JSON, markdown and PNG forms.

:class:`EvalReport` holds one :class:`SystemResult` per system (the first stage first);
:func:`rerankkit.eval.evaluate_runs` builds it.

Example:
    >>> first = SystemResult("bm25", {"nDCG@10": 0.5}, {"nDCG@10": {"q": 0.5}})
    >>> ce = SystemResult("ce", {"nDCG@10": 0.75}, {"nDCG@10": {"q": 0.75}})
    >>> ce.wins, ce.losses, ce.ties = 1, 0, 0
    >>> report = EvalReport("toy", "bm25", 10, 1, ["q"], {"nDCG@10": "nDCG@10"}, [first, ce])
    >>> print(report.to_markdown().splitlines()[-1])
    | ce | 0.7500 | 1/0 (0 ties) | - | - |
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rerankkit._optional import require
from rerankkit.eval._datasets import QrelsCheck
from rerankkit.eval._runs import Timing

_SUFFIXES = {"json": "json", "markdown": "md", "png": "png"}


@dataclass
class SystemResult:
    """One system's figures. ``wins``/``losses``/``ties`` compare nDCG@10 per query with the
    first stage (``None`` for the first stage itself)."""

    name: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    timing: Timing | None = None
    wins: int | None = None
    losses: int | None = None
    ties: int | None = None

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "metrics": self.metrics}
        if self.wins is not None:
            out["vs_first_stage"] = {"wins": self.wins, "losses": self.losses, "ties": self.ties}
        if self.timing is not None:
            out["timing"] = self.timing.to_dict()
        if per_query:
            out["per_query"] = self.per_query
        return out


@dataclass
class EvalReport:
    """Everything an evaluation measured; ``systems[0]`` is the first stage."""

    dataset: str
    first_stage: str
    top_n: int
    relevance_level: int
    query_ids: list[str]
    measures: dict[str, str]
    systems: list[SystemResult]
    qrels_check: QrelsCheck | None = None
    notes: list[str] = field(default_factory=list)

    def system(self, name: str) -> SystemResult:
        """The result of the system called ``name``."""
        for result in self.systems:
            if result.name == name:
                return result
        raise KeyError(f"no system named {name!r} (have: {[s.name for s in self.systems]})")

    def to_dict(self, *, per_query: bool = True) -> dict[str, Any]:
        """JSON-ready dict: settings, qrels check, and each system's figures."""
        return {
            "dataset": self.dataset,
            "first_stage": self.first_stage,
            "top_n": self.top_n,
            "relevance_level": self.relevance_level,
            "queries": len(self.query_ids),
            "measures": self.measures,
            "qrels_check": asdict(self.qrels_check) if self.qrels_check else None,
            "notes": self.notes,
            "systems": [s.to_dict(per_query=per_query) for s in self.systems],
        }

    def to_markdown(self) -> str:
        """A markdown table (one row per system) with the settings above it."""
        names = list(self.measures)
        lines = [
            f"**{self.dataset}**: {len(self.query_ids)} queries, first stage {self.first_stage}, "
            f"top {self.top_n} reranked, relevant = grade >= {self.relevance_level} "
            f"for MRR/Recall (nDCG uses the grades).",
            "",
            "| system | " + " | ".join(names) + " | wins/losses vs first stage (nDCG@10) "
            "| ms/query | pairs/s |",
            "|---|" + "---:|" * len(names) + "---|---:|---:|",
        ]
        for s in self.systems:
            figures = " | ".join(f"{s.metrics[name]:.4f}" for name in names)
            versus = "-" if s.wins is None else f"{s.wins}/{s.losses} ({s.ties} ties)"
            if s.timing is None:
                speed = "- | -"
            else:
                mark = "*" if s.timing.batched else ""
                speed = f"{s.timing.latency_ms_mean:.1f}{mark} | {s.timing.pairs_per_second:.0f}"
            lines.append(f"| {s.name} | {figures} | {versus} | {speed} |")
        if any(s.timing is not None and s.timing.batched for s in self.systems):
            lines += [
                "",
                "\\* amortised: all queries scored in one batched call (throughput, not "
                "single-request latency).",
            ]
        check = self.qrels_check
        if check and (check.unknown_query_judgments or check.unknown_document_judgments):
            lines += [
                "",
                f"qrels: {check.judgments} judgments; {check.unknown_query_judgments} for queries "
                f"not in queries.jsonl (ignored), {check.unknown_document_judgments} for "
                "documents not in corpus.jsonl (kept: they count for the ideal ranking).",
            ]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        """Save a PNG: metrics per system (bars) and per-query nDCG@10 change vs the first
        stage, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""
        require("matplotlib", "eval")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        names = list(self.measures)
        fig = Figure(figsize=(12, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        bars, deltas = fig.subplots(1, 2, width_ratios=[1.1, 1])
        width = 0.8 / max(1, len(self.systems))
        for i, system in enumerate(self.systems):
            xs = [j + (i - (len(self.systems) - 1) / 2) * width for j in range(len(names))]
            drawn = bars.bar(xs, [system.metrics[name] for name in names], width, label=system.name)
            bars.bar_label(drawn, fmt="%.3f", fontsize=7, padding=1)
        bars.set_xticks(range(len(names)), names)
        bars.set_ylim(0, 1.08)
        bars.set_title(f"{self.dataset}: {len(self.query_ids)} queries, top {self.top_n} reranked")
        bars.legend(fontsize=8, loc="upper left")
        base = self.systems[0].per_query["nDCG@10"]
        for system in self.systems[1:]:
            change = sorted(system.per_query["nDCG@10"][q] - base[q] for q in self.query_ids)
            deltas.plot(range(1, len(change) + 1), change, marker=".", label=system.name)
        deltas.axhline(0.0, color="grey", linewidth=0.8)
        deltas.set_xlabel("queries, sorted by change")
        deltas.set_ylabel(f"nDCG@10 change vs {self.first_stage}")
        deltas.set_title("per-query wins (above 0) and losses (below 0)")
        if len(self.systems) > 1:
            deltas.legend(fontsize=8)
        path = Path(path)
        fig.savefig(path, dpi=110, format="png")
        return path

    def save(self, directory: str | Path, *, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {kind: out / f"{stem}.{suffix}" for kind, suffix in _SUFFIXES.items()}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        self.plot(paths["png"])
        return paths
