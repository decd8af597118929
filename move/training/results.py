"""Results of a run, without torch: the results JSON and the per-class CSV beside it.

The results JSON holds final- and best-epoch metrics, the per-epoch history, settings, the run's
dataset, imbalance ratio and table variant, provenance (git commit, input hashes); the per-class AP
goes to ``<name>.per_class.csv`` beside it. Tables and plots read these fields
(``read_results``) without importing torch; checkpoints are ``move.training.artefacts``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from move.features import stored_backbone, stored_weights
from move.files import file_sha256, read_json_input, write_csv_atomic, write_text_atomic

if TYPE_CHECKING:
    from move.training.settings import TrainSettings


@dataclass(frozen=True)
class RunInfo:
    """What the run is, for tables and plots: dataset name and nominal imbalance ratio."""

    dataset: str | None = None
    imbalance_ratio: float | None = None


def summary(metrics: dict) -> dict:
    """Metrics without the per-class list (that goes to the per-class CSV)."""
    return {k: v for k, v in metrics.items() if k != "per_class_AP"}


def results_document(
    settings: TrainSettings,
    variant: str,
    problem,
    history: list[dict],
    run: RunInfo,
    inputs: dict,
) -> dict:
    """The results JSON's content: final and best evaluations, history, what ran and on what
    (``variant``: the run's table row, e.g. ``cb_loss_agg``)."""
    evaluations = [(r["epoch"], r["metrics"]) for r in history if "metrics" in r]
    final_epoch, final = evaluations[-1]
    best_epoch, best = max(
        evaluations, key=lambda item: -1 if item[1]["mAP"] is None else item[1]["mAP"]
    )
    return {
        "method": settings.method,
        "aggregators": settings.aggregators,
        "variant": variant,
        "dataset": run.dataset,
        "imbalance_ratio": run.imbalance_ratio,
        "backbone": stored_backbone(inputs["features"]),
        "features_weights": stored_weights(inputs["features"]),
        "final": summary(final) | {"epoch": final_epoch},
        "best": summary(best) | {"epoch": best_epoch},
        "history": [
            {k: summary(v) if k == "metrics" else v for k, v in r.items()} for r in history
        ],
        "settings": settings.to_dict(),
        "seed": settings.seed,
        "groups": {"head_min": inputs["groups"][0], "tail_max": inputs["groups"][1]},
        "n_classes": problem.n_classes,
        "n_train": len(problem.train),
        "n_test": len(problem.test),
        "git_commit": git_commit(),
        "features": {"path": str(inputs["features"]), "sha256": cached_sha256(inputs["features"])},
        "split": {
            "path": str(inputs["split"]),
            "sha256": file_sha256(inputs["split"]),
            "train_videos_sha256": train_videos_sha256(problem.train),
            "train_counts": [int(n) for n in problem.train_counts],
        },
    }


def train_videos_sha256(train: pd.DataFrame) -> str:
    """The identity of a split's train videos: the sha256 of its sorted ``video_id class_index``
    lines (row order, test videos and the file's other bytes aside), so the tables over seeds
    can tell two seeds trained on other videos (``move.reporting.seeds.run_identity``)."""
    import hashlib

    lines = sorted(f"{v} {c}" for v, c in zip(train.video_id, train.class_index, strict=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def per_class_path(out: Path) -> Path:
    """``results/x.json`` -> ``results/x.per_class.csv``."""
    return Path(out).with_name(Path(out).stem + ".per_class.csv")


def write_results(results: dict, final_metrics: dict, problem, out: Path) -> None:
    """Write the per-class CSV (class_index, label, train_count, group, AP) and the results JSON."""
    table = pd.DataFrame(
        {
            "class_index": range(problem.n_classes),
            "label": problem.labels,
            "train_count": problem.train_counts,
            "group": problem.groups,
            "AP": final_metrics["per_class_AP"],
        }
    )
    write_csv_atomic(table, per_class_path(out))
    write_text_atomic(json.dumps(results, indent=2) + "\n", out)


def read_results(path: str | Path) -> dict:
    """A results JSON written by ``move train`` (tables, plots)."""
    return read_json_input(path, "results file", "(re)train it with move train")


def cached_sha256(path: Path) -> str:
    """sha256 of a (large) input file, cached in ``<path>.sha256`` keyed by its size and mtime.

    A feature file of a full benchmark is tens of GB; hashing it for every one of many training
    runs would cost minutes each. The cache is ignored as soon as the file changes.
    """
    path = Path(path)
    stat = path.stat()
    key = f"{stat.st_size} {stat.st_mtime_ns}"
    cache = path.with_name(path.name + ".sha256")
    try:
        cached_key, digest = cache.read_text().strip().rsplit(" ", 1)
        if cached_key == key and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    digest = file_sha256(path)
    try:
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        tmp.write_text(f"{key} {digest}\n")
        os.replace(tmp, cache)
    except OSError:
        pass  # read-only feature folder: no cache, still correct
    return digest


def git_commit() -> str | None:
    """The commit of the code that produced a result (None outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
