"""``rerankkit train``: fine-tune a cross-encoder (mined hard negatives, four losses, a teacher).

Examples (from the project root, with the test collections beside it)::

    rerankkit train --model ../shared/models/minilm-l6-msmarco-ce --data ../shared/data/scifact \\
        --loss margin --negatives 4 --ranks 10 100 --max-steps 60 --output models/scifact-margin
    rerankkit train --model ../shared/models/minilm-l6-msmarco-ce --data ../shared/data/scifact \\
        --loss marginmse --teacher cross-encoder:BIG_MODEL --teacher embedding: --output out
    rerankkit train --model my-encoder --new-head --data triples.jsonl --eval-data beir/ \\
        --output out

Before/after nDCG@10 on the test split (same first stage) is printed and written to the model
card (``OUTPUT/README.md``). ``--resume`` continues from the newest checkpoint in
``OUTPUT/checkpoints``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    """Register ``train`` on the ``rerankkit`` command's subparsers."""
    from rerankkit.cli.commands import _positive_int

    tr = commands.add_parser(
        "train",
        help="fine-tune a cross-encoder on your data (needs rerankkit[train])",
        description="Fine-tune a cross-encoder with sentence-transformers' CrossEncoderTrainer: "
        "hard negatives mined with the first stage (skipping judged positives), losses bce, "
        "margin (pairwise hinge), marginmse (distillation from --teacher) or listwise "
        "(LambdaLoss), then nDCG@10 before and after on the test split.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument("--model", required=True, help="starting cross-encoder (hub id or folder)")
    tr.add_argument(
        "--new-head",
        action="store_true",
        help="allow a plain encoder: train a new, randomly initialised 1-logit head",
    )
    tr.add_argument(
        "--data",
        required=True,
        type=Path,
        help="BEIR folder with qrels/<split>.tsv, or JSONL of {query, positive, negative} "
        "triples / {query, passage, label} pairs",
    )
    tr.add_argument("--split", default="train", help="training qrels split (default: train)")
    tr.add_argument("--output", required=True, type=Path, help="folder for the trained model")
    tr.add_argument("--loss", choices=["bce", "margin", "marginmse", "listwise"], default="bce")
    tr.add_argument("--margin", type=float, default=1.0, help="hinge margin in logits (margin)")
    tr.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="SPEC",
        help="teacher reranker spec for marginmse (repeatable: several are z-score fused)",
    )
    tr.add_argument("--first-stage", choices=["bm25", "dense", "hybrid"], default="bm25")
    tr.add_argument("--negatives", type=int, default=5, help="mined per query (0: none)")
    tr.add_argument(
        "--ranks",
        type=_positive_int,
        nargs=2,
        default=[10, 100],
        metavar=("FIRST", "LAST"),
        help="first-stage rank window to mine from (default: 10 100)",
    )
    tr.add_argument(
        "--max-queries", type=_positive_int, default=None, help="train on a seeded sample"
    )
    tr.add_argument("--sampling", choices=["top", "random"], default="top")
    tr.add_argument("--epochs", type=float, default=1.0)
    tr.add_argument("--max-steps", type=_positive_int, default=None)
    tr.add_argument("--batch-size", type=_positive_int, default=16)
    tr.add_argument("--learning-rate", type=float, default=2e-5)
    tr.add_argument("--warmup-ratio", type=float, default=0.1)
    tr.add_argument("--max-length", type=_positive_int, default=256)
    tr.add_argument("--seed", type=int, default=12)
    precision = tr.add_mutually_exclusive_group()
    precision.add_argument("--bf16", dest="bf16", action="store_true", default=None)
    precision.add_argument("--no-bf16", dest="bf16", action="store_false")
    tr.add_argument("--save-steps", type=_positive_int, default=100)
    tr.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the newest checkpoint in OUTPUT/checkpoints (or this one)",
    )
    tr.add_argument(
        "--eval-data", default=None, help="BEIR folder for before/after (default: --data)"
    )
    tr.add_argument("--eval-split", default="test")
    tr.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    tr.add_argument("--eval-depth", type=_positive_int, default=100)
    tr.add_argument("--eval-dtype", default="auto")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Build the :class:`rerankkit.train.trainer.TrainConfig` from ``args`` and train."""
    from rerankkit.train.trainer import TrainConfig, train

    config = TrainConfig(
        model=args.model,
        data=str(args.data),
        output=str(args.output),
        loss=args.loss,
        split=args.split,
        first_stage=args.first_stage,
        ranks=tuple(args.ranks),
        negatives=args.negatives,
        max_queries=args.max_queries,
        sampling=args.sampling,
        teacher=tuple(args.teacher),
        new_head=args.new_head,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        max_length=args.max_length,
        margin=args.margin,
        seed=args.seed,
        bf16=args.bf16,
        save_steps=args.save_steps,
        eval_data=args.eval_data,
        eval_split=None if args.no_eval else args.eval_split,
        eval_depth=args.eval_depth,
        eval_dtype=args.eval_dtype,
        progress=False if args.no_progress else None,
    )
    command = shlex.join(["rerankkit", *sys.argv[1:]]) if sys.argv else None
    result = train(config, resume=args.resume, command=command)
    sys.stdout.write(f"{result.summary()}\n\nwrote {result.output}\n")
    return 0
