"""Run artefacts, one owner: the checkpoint, the resumable progress file and the results JSON.

- checkpoint ``<name>.pt``: model weights, settings, class labels and counts, groups; written by
  ``train``, read by ``evaluate``, ``inspect`` and the plots (``load_checkpoint``).
- progress ``<checkpoint>.partial``: everything to resume after an epoch (model, optimiser,
  scheduler, method state, history, class labels); removed when the run ends.
- results JSON: final- and best-epoch metrics, per-epoch history, settings, the run's dataset,
  imbalance ratio and table variant, provenance (git commit, input hashes); the per-class AP goes
  to ``<name>.per_class.csv`` beside it. Tables and plots read these fields (``read_results``).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from move.datasets.splits import write_csv_atomic
from move.errors import MoveError
from move.extraction.features import stored_backbone
from move.files import atomic_output, file_sha256, read_json_input, write_text_atomic
from move.lazy import LazyModule
from move.training.registry import variant_of

if TYPE_CHECKING:
    from move.training.model import VideoClassifier
    from move.training.settings import TrainSettings

# imported on first use: tables and plots read results JSONs without torch
torch = LazyModule("torch")
model_module = LazyModule("move.training.model")
settings_module = LazyModule("move.training.settings")


@dataclass
class Checkpoint:
    """A trained model as saved: weights, settings, class labels / counts and group thresholds."""

    model_state: dict
    settings: TrainSettings
    labels: list[str]
    train_counts: np.ndarray
    head_min: int
    tail_max: int

    @property
    def n_classes(self) -> int:
        """Number of classes the model scores."""
        return len(self.labels)

    def build_model(self) -> VideoClassifier:
        """The checkpoint's model, weights loaded, in eval mode on the CPU."""
        model = model_module.VideoClassifier(self.n_classes, self.settings.model)
        model.load_state_dict(self.model_state)
        return model.eval()


def save_checkpoint(
    path: Path, model: VideoClassifier, settings: TrainSettings, problem, groups: tuple[int, int]
) -> None:
    """Write the final checkpoint atomically."""
    state = {
        "model": model.state_dict(),
        "settings": settings.to_dict(),
        "n_classes": problem.n_classes,
        "labels": list(problem.labels),
        "train_counts": problem.train_counts.tolist(),
        "head_min": groups[0],
        "tail_max": groups[1],
    }
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _torch_load(path: Path, what: str, fix: str) -> dict:
    """A torch file's content; missing or unreadable -> one-line ``MoveError`` with the fix."""
    if not Path(path).is_file():
        raise MoveError(f"{what} {path} not found: {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # truncated or not a torch file
        raise MoveError(f"{what} {path} is unreadable ({type(error).__name__}): {fix}") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint written by ``train`` (one loader for evaluate, inspect and the plots)."""
    state = _torch_load(Path(path), "checkpoint", "train first (move train)")
    return Checkpoint(
        model_state=state["model"],
        settings=settings_module.TrainSettings.from_dict(state["settings"]),
        labels=list(state["labels"]),
        train_counts=np.asarray(state["train_counts"]),
        head_min=int(state["head_min"]),
        tail_max=int(state["tail_max"]),
    )


def check_class_labels(
    checkpoint: str | Path, trained: list[str], split: str | Path, listed: list[str]
) -> None:
    """Refuse a split whose class labels (by index) differ from the checkpoint's: its mAP would
    score the wrong classes."""
    if list(trained) == list(listed):
        return
    if len(trained) != len(listed):
        detail = f"{len(trained)} classes, the split {len(listed)}"
    else:
        c = next(i for i, (a, b) in enumerate(zip(trained, listed, strict=True)) if a != b)
        detail = f"class {c} is '{trained[c]}' there and '{listed[c]}' in the split"
    raise MoveError(
        f"checkpoint {checkpoint} was trained on other classes than split {split} lists "
        f"({detail}): use the split it was trained on"
    )


@dataclass
class Progress:
    """What a run needs to continue after ``epoch`` epochs."""

    epoch: int
    history: list[dict]
    model: dict
    optimizer: dict
    scheduler: dict
    method_state: dict


def progress_path(checkpoint: Path) -> Path:
    """``<checkpoint>.partial``, the resumable progress file of a run."""
    return checkpoint.with_name(checkpoint.name + ".partial")


def save_progress(
    checkpoint: Path, progress: Progress, settings: TrainSettings, labels: list[str]
) -> None:
    """Write ``<checkpoint>.partial`` atomically (after every epoch)."""
    state = vars(progress) | {"fingerprint": settings.fingerprint(), "labels": list(labels)}
    with atomic_output(progress_path(checkpoint)) as tmp:
        torch.save(state, tmp)


def load_progress(
    checkpoint: Path, settings: TrainSettings, split: str | Path, labels: list[str]
) -> Progress | None:
    """The progress of an interrupted run with these settings, or None (other settings: ignored).

    A progress file of the same settings but other classes is refused: resuming would train on
    relabelled videos.
    """
    partial = progress_path(checkpoint)
    if not partial.is_file():
        return None
    state = _torch_load(partial, "progress file", "delete it to start the run afresh")
    if state.get("fingerprint") != settings.fingerprint():
        return None
    check_class_labels(partial, state.get("labels", labels), split, labels)
    fields = ("epoch", "history", "model", "optimizer", "scheduler", "method_state")
    return Progress(**{name: state.get(name, {}) for name in fields})


@dataclass(frozen=True)
class RunInfo:
    """What the run is, for tables and plots: dataset name and nominal imbalance ratio."""

    dataset: str | None = None
    imbalance_ratio: float | None = None


def summary(metrics: dict) -> dict:
    """Metrics without the per-class list (that goes to the per-class CSV)."""
    return {k: v for k, v in metrics.items() if k != "per_class_AP"}


def results_document(
    settings: TrainSettings, problem, history: list[dict], run: RunInfo, inputs: dict
) -> dict:
    """The results JSON's content: final and best evaluations, history, what ran and on what."""
    evaluations = [(r["epoch"], r["metrics"]) for r in history if "metrics" in r]
    final_epoch, final = evaluations[-1]
    best_epoch, best = max(
        evaluations, key=lambda item: -1 if item[1]["mAP"] is None else item[1]["mAP"]
    )
    return {
        "method": settings.method,
        "aggregators": settings.aggregators,
        "variant": variant_of(settings.method, settings.aggregators),
        "dataset": run.dataset,
        "imbalance_ratio": run.imbalance_ratio,
        "backbone": stored_backbone(inputs["features"]),
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
        "split": {"path": str(inputs["split"]), "sha256": file_sha256(inputs["split"])},
    }


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
