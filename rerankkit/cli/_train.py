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
import math
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _nonnegative_int(text: str) -> int:
    """An argparse type: an integer >= 0.

    Example:
        >>> _nonnegative_int("0")
        0
        >>> _nonnegative_int("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: expected an integer >= 0, got -1
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _number(
    minimum: float, maximum: float = math.inf, *, exclusive: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite float in ``[minimum, maximum]`` (``minimum`` excluded when
    ``exclusive``).

    Example:
        >>> _number(0.0, exclusive=True)("0.5")
        0.5
        >>> _number(0.0, 1.0)("2")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: expected a number from 0.0 to 1.0, got 2.0
    """
    low = f"above {minimum}" if exclusive else f"from {minimum}"
    wanted = f"a number {low}" + (f" to {maximum}" if maximum < math.inf else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        too_low = value <= minimum if exclusive else value < minimum
        if not math.isfinite(value) or too_low or value > maximum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


def add_parser(commands: Any) -> None:
    """Register ``train`` on the ``rerankkit`` command's subparsers."""
    from rerankkit.cli._commands import _positive_int

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
    tr.add_argument("--split", default=None, help="training qrels split (default: train)")
    tr.add_argument("--output", required=True, type=Path, help="folder for the trained model")
    tr.add_argument("--loss", choices=["bce", "margin", "marginmse", "listwise"], default="bce")
    tr.add_argument(
        "--margin", type=_number(0.0), default=None, help="hinge margin in logits (default: 1.0)"
    )
    tr.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="SPEC",
        help="teacher reranker spec for marginmse (repeatable: several are z-score fused)",
    )
    tr.add_argument(
        "--first-stage",
        choices=["bm25", "dense", "hybrid"],
        default=None,
        help="miner and evaluation first stage (default: bm25)",
    )
    tr.add_argument(
        "--negatives",
        type=_nonnegative_int,
        default=None,
        help="mined per query (default: 5; 0: none; BEIR data only)",
    )
    tr.add_argument(
        "--ranks",
        type=_positive_int,
        nargs=2,
        default=None,
        metavar=("FIRST", "LAST"),
        help="first-stage rank window to mine from (default: 10 100)",
    )
    tr.add_argument(
        "--max-queries", type=_positive_int, default=None, help="train on a seeded sample"
    )
    tr.add_argument("--sampling", choices=["top", "random"], default=None, help="default: top")
    tr.add_argument("--epochs", type=_number(0.0, exclusive=True), default=1.0)
    tr.add_argument("--max-steps", type=_positive_int, default=None)
    tr.add_argument("--batch-size", type=_positive_int, default=16)
    tr.add_argument("--learning-rate", type=_number(0.0, exclusive=True), default=2e-5)
    tr.add_argument("--warmup-ratio", type=_number(0.0, 1.0), default=0.1)
    tr.add_argument("--max-length", type=_positive_int, default=256)
    tr.add_argument("--seed", type=_seed, default=12)
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
    tr.add_argument("--eval-split", default=None, help="default: test")
    tr.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    tr.add_argument("--eval-depth", type=_positive_int, default=None, help="default: 100")
    tr.add_argument("--eval-dtype", default=None, help="default: auto")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(handler=run_train)


def _seed(text: str) -> int:
    value = _nonnegative_int(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected an integer below 2**32, got {value}")
    return value


def check_arguments(args: argparse.Namespace) -> None:
    """What one argument's type cannot check, and options that would be ignored (refused
    rather than silently dropped): ``--ranks`` in order; ``--margin`` with ``--loss margin``
    only; ``--split`` and the mining options with BEIR data only; ``--ranks`` and
    ``--sampling`` not with ``--negatives 0``; the evaluation options only when there is an
    evaluation (not with ``--no-eval``, nor with JSONL data and no ``--eval-data``);
    ``--first-stage`` only when it mines or evaluates. The rest (``--teacher`` with ``--loss
    marginmse`` only and always, ``--warmup-ratio`` below 1, ``--max-length`` of at least 8)
    is :class:`~rerankkit.train._trainer.TrainConfig`'s own validation, one line here too.

    Raises:
        CliError: Naming the argument (one line, exit status 2).
    """
    from rerankkit.cli._commands import CliError

    first, last = args.ranks or (1, 1)
    if first > last:
        raise CliError(f"argument --ranks: FIRST must be <= LAST, got {first} {last}")
    if args.data.is_file():  # JSONL is never mined
        given = [
            flag
            for flag, value in (
                ("--split", args.split),
                ("--negatives", args.negatives),
                ("--ranks", args.ranks),
                ("--sampling", args.sampling),
            )
            if value is not None
        ]
        if given:
            raise CliError(
                f"argument {given[0]}: used with a BEIR folder as --data only; {args.data} is "
                "a JSONL file (its negatives come from the file; nothing is mined)"
            )
    if args.eval_data is not None and args.no_eval:
        raise CliError("argument --eval-data: --no-eval turns the evaluation off")
    if args.negatives == 0:
        given = [
            flag
            for flag, value in (("--ranks", args.ranks), ("--sampling", args.sampling))
            if value is not None
        ]
        if given:
            raise CliError(f"argument {given[0]}: --negatives 0 mines nothing")
    evaluates = not args.no_eval and (args.eval_data is not None or not args.data.is_file())
    if not evaluates:
        why = (
            "--no-eval turns the evaluation off"
            if args.no_eval
            else f"{args.data} is JSONL, so there is no evaluation without --eval-data"
        )
        for flag, value in (
            ("--eval-split", args.eval_split),
            ("--eval-depth", args.eval_depth),
            ("--eval-dtype", args.eval_dtype),
        ):
            if value is not None:
                raise CliError(f"argument {flag}: {why}")
        mines = not args.data.is_file() and args.negatives != 0
        if args.first_stage is not None and not mines:
            raise CliError(f"argument --first-stage: nothing is mined or evaluated ({why})")
    if args.margin is not None and args.loss != "margin":
        raise CliError(f"argument --margin: only --loss margin uses it (got --loss {args.loss})")


def recorded_command(argv: list[str]) -> str:
    """The command line for the model card, with every spec's ``api_key`` shown as ``***``.

    Example:
        >>> recorded_command(["train", "--teacher", "cohere:rerank-v3.5?api_key=sk-1"])
        "rerankkit train --teacher 'cohere:rerank-v3.5?api_key=***'"
    """
    from rerankkit._specs import redact_spec

    return shlex.join(["rerankkit", *(redact_spec(arg) for arg in argv)])


def run_train(args: argparse.Namespace) -> int:
    """Build the :class:`rerankkit.train._trainer.TrainConfig` from ``args`` and train."""
    from rerankkit.train._trainer import TrainConfig, train

    check_arguments(args)

    config = TrainConfig(
        model=args.model,
        data=str(args.data),
        output=str(args.output),
        loss=args.loss,
        split=args.split or "train",
        first_stage=args.first_stage or "bm25",
        ranks=tuple(args.ranks or (10, 100)),
        negatives=5 if args.negatives is None else args.negatives,
        max_queries=args.max_queries,
        sampling=args.sampling or "top",
        teacher=tuple(args.teacher),
        new_head=args.new_head,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        max_length=args.max_length,
        margin=1.0 if args.margin is None else args.margin,
        seed=args.seed,
        bf16=args.bf16,
        save_steps=args.save_steps,
        eval_data=args.eval_data,
        eval_split=None if args.no_eval else args.eval_split or "test",
        eval_depth=100 if args.eval_depth is None else args.eval_depth,
        eval_dtype=args.eval_dtype or "auto",
        progress=False if args.no_progress else None,
    )
    command = recorded_command(sys.argv[1:]) if sys.argv else None
    result = train(config, resume=args.resume, command=command)
    sys.stdout.write(f"{result.summary()}\n\nwrote {result.output}\n")
    return 0
