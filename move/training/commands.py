"""What ``move train`` and ``move evaluate`` do once their options are parsed (the CLI only calls these)."""

from __future__ import annotations

import json
from pathlib import Path

from move.config import check_settings
from move.errors import MoveError
from move.files import write_text_atomic
from move.training.evaluation import evaluate_checkpoint
from move.training.loop import train
from move.training.methods import train_settings, variant_settings
from move.training.results import RunInfo, summary
from move.training.settings import TrainSettings


def settings_from_options(settings_json: str | None, seed: int | None, variant: str | None):
    """TrainSettings from ``--settings`` JSON, with ``--seed`` and ``--method`` (a variant) on top."""
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
    metrics = summary(evaluate_checkpoint(checkpoint, features, split, device=device))
    text = json.dumps(metrics, indent=2)
    if out:
        write_text_atomic(text + "\n", out)
    return text
