"""The training stage's commands: what ``move train`` and ``move evaluate`` declare and do (the CLI
only gathers ``commands()`` and calls these). Torch loads when a command runs, not to list them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from move.arguments import Command, arg, input_file, output_file
from move.config import check_settings
from move.errors import MoveError
from move.files import write_text_atomic
from move.training.methods import (
    get_method,
    method_names,
    train_settings,
    variant_names,
    variant_settings,
)
from move.training.registry import settings_schema
from move.training.results import RunInfo, summary
from move.training.settings import PRECISIONS, TrainSettings


def settings_from_options(
    settings_json: str | None,
    seed: int | None,
    variant: str | None,
    precision: str | None = None,
    compiled: bool | None = None,
):
    """TrainSettings from ``--settings`` JSON, with ``--seed``, ``--method`` (a variant),
    ``--precision`` and ``--compile`` on top."""
    try:
        values = json.loads(settings_json) if settings_json else {}
    except json.JSONDecodeError as error:
        raise MoveError(
            f"--settings is not valid JSON ({error.msg}): pass the train section as JSON"
        ) from None
    if seed is not None:
        values["seed"] = seed
    if variant:
        values.update(variant_settings(variant))
    if precision is not None:
        values["precision"] = precision
    if compiled is not None:
        values["compile"] = compiled
    check_settings(values, "train", "train setting")  # the schema's ranges
    return train_settings(values)


def train_command(
    features: str,
    split: str,
    out: str,
    checkpoint: str | None,
    settings: TrainSettings,
    groups: tuple[int, int],
    run_info: RunInfo,
    progress: bool = True,
) -> str:
    """Train and write the artefacts; the one-line summary the CLI prints."""
    from move.training.loop import train

    checkpoint_path = checkpoint or Path(out).with_suffix(".pt")
    results = train(features, split, out, checkpoint_path, settings, *groups, progress, run_info)
    final = results["final"]
    return (
        f"wrote {out}: mAP {final['mAP']:.4f} (head {final['head_mAP']}, medium "
        f"{final['medium_mAP']}, tail {final['tail_mAP']}), top-1 {final['top1']:.4f}"
    )


def evaluate_command(
    checkpoint: str, features: str, split: str, out: str | None, device: str = "auto"
) -> str:
    """Evaluate a checkpoint; the metrics as JSON text (also written to ``out`` when given)."""
    from move.training.evaluation import evaluate_checkpoint

    metrics = summary(evaluate_checkpoint(checkpoint, features, split, device=device))
    text = json.dumps(metrics, indent=2)
    if out:
        write_text_atomic(text + "\n", out)
    return text


def train_from_arguments(args: argparse.Namespace) -> str:
    """``move train``: settings from the options, then ``train_command``."""
    settings = settings_from_options(
        args.settings, args.seed, args.method, args.precision, args.compile
    )
    run = RunInfo(args.dataset, args.imbalance_ratio)
    paths = (args.features, args.split, args.out, args.checkpoint)
    groups = (args.head_min, args.tail_max)
    return train_command(*paths, settings, groups, run, progress=not args.quiet)


def evaluate_from_arguments(args: argparse.Namespace) -> str:
    """``move evaluate``."""
    return evaluate_command(args.checkpoint, args.features, args.split, args.out, args.device)


def method_settings_help() -> str:
    """Every method's own settings with their defaults (``move train --help``'s epilog)."""
    lines = ["methods and their settings (the train section's '<method>: {key: value}'):"]
    for name in method_names():
        method = get_method(name)
        properties = settings_schema(method.settings)["properties"]
        keys = ", ".join(f"{key}={rule['default']}" for key, rule in properties.items())
        lines.append(f"  {name} ({method.display}): {keys or 'no settings'}")
    return "\n".join(lines)


def commands() -> list[Command]:
    """This stage's commands, declared anew on each call (methods registered since are listed)."""
    return [
        Command(
            "train",
            "Train MOVE (or a baseline) on features + split; write results JSON and checkpoint.",
            [
                input_file("--features", required=True, help="feature HDF5 file"),
                input_file("--split", required=True, help="split CSV from 'move split'"),
                output_file(
                    "--out", required=True, help="results JSON (+ a per-class CSV beside it)"
                ),
                output_file("--checkpoint", help="checkpoint file (default: <out>.pt)"),
                arg("--settings", help="training settings as JSON (the config's train section)"),
                arg("--seed", type=int, help="override the seed in --settings"),
                arg(
                    "--head-min",
                    type=int,
                    required=True,
                    help="head: at least this many train videos",
                ),
                arg(
                    "--tail-max",
                    type=int,
                    required=True,
                    help="tail: at most this many train videos",
                ),
                arg(
                    "--method",
                    help="method variant overriding --settings: a registered method, '<method>_agg' "
                    f"for its Agg variant (choices: {', '.join(variant_names())})",
                ),
                arg(
                    "--precision",
                    choices=PRECISIONS,
                    help="precision of the training steps, overriding --settings: float32 (the "
                    "authors', default), tf32 (CUDA only; none on a CPU) or bf16 (autocast); "
                    "evaluation stays float32",
                ),
                arg(
                    "--compile",
                    action=argparse.BooleanOptionalAction,
                    help="run the network compiled (torch.compile), overriding --settings; "
                    "needs a C++ compiler (CPU) or Triton (CUDA), else trains uncompiled",
                ),
                arg("--dataset", help="dataset name recorded in the results (tables, plots)"),
                arg(
                    "--imbalance-ratio",
                    type=float,
                    help="imbalance ratio of the split, recorded in the results (tables, plots)",
                ),
            ],
            train_from_arguments,
            epilog=method_settings_help(),
        ),
        Command(
            "evaluate",
            "Reload a checkpoint and evaluate it on a split's test videos.",
            [
                input_file(
                    "--checkpoint", required=True, help="checkpoint written by 'move train'"
                ),
                input_file("--features", required=True, help="feature HDF5 file"),
                input_file("--split", required=True, help="split CSV"),
                output_file("--out", help="write the metrics JSON here too"),
                arg("--device", default="auto", help="auto, cpu or cuda[:N]"),
            ],
            evaluate_from_arguments,
        ),
    ]
