"""The model card (``README.md`` of the output folder), rendered from the training record.

Example:
    >>> record = {"config": {"model": "base", "loss": "margin", "margin": 1.0},
    ...           "training": {"steps": 3}, "data": {"source": "triples.jsonl"}}
    >>> print(model_card(record).splitlines()[0])
    # Cross-encoder fine-tuned from base with the margin loss
"""

from __future__ import annotations

import json
from typing import Any

LOSS_FORMULAS: dict[str, str] = {
    "bce": "binary cross-entropy on each (query, passage, label): "
    "-[y log sigmoid(s) + (1 - y) log(1 - sigmoid(s))]",
    "margin": "pairwise margin ranking (hinge): mean(max(0, margin - (s(q, d+) - s(q, d-))))",
    "marginmse": "MarginMSE distillation: mean(((s(q, d+) - s(q, d-)) - (t(q, d+) - t(q, d-)))^2), "
    "t = teacher score",
    "listwise": "LambdaLoss (NDCG-Loss2++ weighting) over each query's list of passages",
}


def _json_block(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2) + "\n```"


def evaluation_table(evaluation: dict[str, Any] | None) -> str:
    """Markdown table of an evaluation record (one row per system).

    Example:
        >>> record = {"settings": {"top_n": 10}, "systems": [
        ...     {"name": "bm25", "metrics": {"nDCG@10": 0.5}},
        ...     {"name": "after", "metrics": {"nDCG@10": 0.75},
        ...      "vs_first_stage": {"wins": 3, "losses": 1, "ties": 2}}]}
        >>> print(evaluation_table(record))
        | system | nDCG@10 | wins/losses vs first stage |
        |---|---|---|
        | bm25 | 0.5000 | - |
        | after | 0.7500 | 3/1 (2 ties) |
    """
    if not evaluation:
        return "No before/after evaluation (no BEIR test folder given, or it was turned off)."
    systems = evaluation["systems"]
    names = list(systems[0]["metrics"])
    lines = [
        "| system | " + " | ".join(names) + " | wins/losses vs first stage |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for system in systems:
        versus = system.get("vs_first_stage")
        wl = f"{versus['wins']}/{versus['losses']} ({versus['ties']} ties)" if versus else "-"
        values = " | ".join(f"{system['metrics'][n]:.4f}" for n in names)
        lines.append(f"| {system['name']} | {values} | {wl} |")
    return "\n".join(lines)


def model_card(record: dict[str, Any]) -> str:
    """Markdown card: starting model, data, loss and formula, steps, hyper-parameters,
    the before/after table and how to load the model."""
    config = record.get("config", {})
    loss = config.get("loss", "?")
    lines = [
        f"# Cross-encoder fine-tuned from {config.get('model', '?')} with the {loss} loss",
        "",
        "Trained with `rerankkit train` (sentence-transformers `CrossEncoderTrainer`).",
        "",
        "## Loss",
        "",
        LOSS_FORMULAS.get(loss, loss)
        + (f" (margin {config.get('margin')})" if loss == "margin" else ""),
        "",
        "## Data",
        "",
        _json_block(record.get("data", {})),
        "",
        "## Training",
        "",
        _json_block(record.get("training", {})),
        "",
        "## Hyper-parameters",
        "",
        _json_block(config),
        "",
        "## Evaluation before and after",
        "",
        evaluation_table(record.get("evaluation")),
        "",
        "## Load",
        "",
        "```python",
        "from rerankkit import CrossEncoderReranker",
        "reranker = CrossEncoderReranker(path)",
        "# or: from sentence_transformers import CrossEncoder; CrossEncoder(path)",
        "```",
        "",
    ]
    if record.get("command"):
        lines[4:4] = ["Command:", "", "```", str(record["command"]), "```", ""]
    return "\n".join(lines)
