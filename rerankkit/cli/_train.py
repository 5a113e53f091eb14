"""``rerankkit train``: fine-tune a cross-encoder (mined hard negatives, four losses, a teacher).

Examples (from the project root, with the test collections beside it)::

    rerankkit train --model ../shared/models/minilm-l6-msmarco-ce --data ../shared/data/scifact \\
        --loss margin --negatives 4 --ranks 10 100 --max-steps 60 --output models/scifact-margin
    rerankkit train --model ../shared/models/minilm-l6-msmarco-ce --data ../shared/data/scifact \\
        --loss marginmse --teacher cross-encoder:BIG_MODEL --teacher embedding: --output out
    rerankkit train --model my-encoder --new-head --data triples.jsonl --eval-data beir/ \\
        --output out

The options are :class:`~rerankkit.train._config.TrainConfig`'s fields (their defaults, ranges
and help are written there, once), plus ``--no-eval`` and ``--resume``. Before/after nDCG@10
on the test split (same first stage) is printed and written to the model card
(``OUTPUT/README.md``). ``--resume`` continues from the newest checkpoint in
``OUTPUT/checkpoints``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from rerankkit.cli._options import CliError, add_model_options, flag, model_from_args
from rerankkit.train._config import TrainConfig


def add_parser(commands: Any) -> None:
    """Register ``train`` on the ``rerankkit`` command's subparsers."""
    train = commands.add_parser(
        "train",
        help="fine-tune a cross-encoder on your data (needs rerankkit[train])",
        description="Fine-tune a cross-encoder with sentence-transformers' CrossEncoderTrainer: "
        "hard negatives mined with the first stage (skipping judged positives), losses bce, "
        "margin (pairwise hinge), marginmse (distillation from --teacher) or listwise "
        "(LambdaLoss), then nDCG@10 before and after on the test split.",
    )
    add_model_options(train, TrainConfig, exclude=("bm25_language",))
    train.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the newest checkpoint in OUTPUT/checkpoints (or this one)",
    )
    train.set_defaults(handler=run_train)


def refuse_ignored_options(config: TrainConfig, given: Collection[str], *, no_eval: bool) -> None:
    """Refuse an option the run would ignore rather than drop it silently: ``--split`` and the
    mining options with JSONL data; ``--ranks`` and ``--sampling`` with ``--negatives 0``;
    the ``--eval-*`` options when nothing is evaluated (``--no-eval``, or JSONL data and no
    ``--eval-data``); ``--first-stage`` when nothing is mined or evaluated; ``--margin``
    without ``--loss margin``. Everything else is :class:`TrainConfig`'s own validation.

    Raises:
        CliError: Naming the first such option (one line, exit status 2).
    """
    jsonl = Path(config.data).is_file()  # JSONL is never mined
    evaluates = not no_eval and (config.eval_data is not None or not jsonl)
    why_not = (
        "--no-eval turns the evaluation off"
        if no_eval
        else f"{config.data} is JSONL, so there is no evaluation without --eval-data"
    )
    rules = (
        (
            jsonl,
            ("split", "negatives", "ranks", "sampling"),
            f"used with a BEIR folder as --data only; {config.data} is a JSONL file (its "
            "negatives come from the file; nothing is mined)",
        ),
        (no_eval, ("eval_data",), "--no-eval turns the evaluation off"),
        (config.negatives == 0, ("ranks", "sampling"), "--negatives 0 mines nothing"),
        (not evaluates, ("eval_split", "eval_top_n", "eval_dtype"), why_not),
        (
            not evaluates and (jsonl or config.negatives == 0),
            ("first_stage",),
            f"nothing is mined or evaluated ({why_not})",
        ),
        (
            config.loss != "margin",
            ("margin",),
            f"only --loss margin uses it (got --loss {config.loss})",
        ),
    )
    for applies, names, why in rules:
        ignored = [name for name in names if applies and name in given]
        if ignored:
            raise CliError(f"argument {flag(ignored[0])}: {why}")


def recorded_command(argv: list[str]) -> str:
    """The command line for the model card, with every spec's ``api_key`` shown as ``***``.

    Example:
        >>> recorded_command(["train", "--teacher", "cohere:rerank-v3.5?api_key=sk-1"])
        "rerankkit train --teacher 'cohere:rerank-v3.5?api_key=***'"
    """
    from rerankkit._specs import redact_spec

    return shlex.join(["rerankkit", *(redact_spec(arg) for arg in argv)])


def run_train(args: argparse.Namespace) -> int:
    """Build the :class:`~rerankkit.train._config.TrainConfig` from ``args`` and train."""
    from rerankkit.train._model import require_train_extra

    require_train_extra()  # before the trainer module imports sentence-transformers
    from rerankkit.train._trainer import train

    config = model_from_args(TrainConfig, args, **({"eval_split": None} if args.no_eval else {}))
    refuse_ignored_options(config, vars(args), no_eval=args.no_eval)
    command = recorded_command(sys.argv[1:]) if sys.argv else None
    result = train(config, resume=args.resume, command=command)
    sys.stdout.write(f"{result.summary()}\n\nwrote {result.output}\n")
    return 0
