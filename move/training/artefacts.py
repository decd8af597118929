"""Run artefacts that hold tensors: the checkpoint and the resumable progress file.

- checkpoint ``<name>.pt``: model weights, settings, class labels and counts, groups; written by
  ``train``, read by ``evaluate``, the diagnostics and the plots (``load_checkpoint``).
- progress ``<checkpoint>.partial``: everything to resume after an epoch (model, optimiser,
  scheduler, method state, history, class labels) and what it was made from (the settings'
  fingerprint, the sha256 of the features and of the split); removed when the run ends.

The results JSON beside them is ``move.training.results`` (no torch).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from move.errors import MoveError
from move.files import atomic_output, file_sha256
from move.training.methods import get_method
from move.training.model import VideoClassifier
from move.training.results import cached_sha256
from move.training.settings import TrainSettings


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

    def build_model(self) -> torch.nn.Module:
        """The checkpoint's model (as its method builds it), weights loaded, in eval mode on the CPU."""
        model = build_model(self.n_classes, self.settings)
        model.load_state_dict(self.model_state)
        return model.eval()


def build_model(n_classes: int, settings: TrainSettings) -> torch.nn.Module:
    """The network of a run: its method's ``build_model`` hook, else MOVE's ``VideoClassifier``."""
    method = get_method(settings.method)
    if method.build_model is not None:
        return method.build_model(n_classes, settings, method.options(settings.method_settings))
    return VideoClassifier(n_classes, settings.model)


def save_checkpoint(
    path: Path, model: torch.nn.Module, settings: TrainSettings, problem, groups: tuple[int, int]
) -> None:
    """Write the final checkpoint atomically, its floating-point tensors in
    ``settings.checkpoint_dtype`` (``compact_state``)."""
    state = {
        "model": compact_state(model.state_dict(), settings.checkpoint_dtype),
        "settings": settings.to_dict(),
        "n_classes": problem.n_classes,
        "labels": list(problem.labels),
        "train_counts": problem.train_counts.tolist(),
        "head_min": groups[0],
        "tail_max": groups[1],
    }
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


FLOAT16_MAX = 65504.0


def compact_state(state: dict, dtype: str) -> dict:
    """A state dict with its floating-point tensors in ``dtype`` (float32, float16, bfloat16);
    a tensor float16 cannot hold (a value beyond ±65504) stays float32. Loading it back
    (``load_state_dict``) casts every tensor to the model's float32."""
    target = getattr(torch, dtype)
    if target == torch.float32:
        return dict(state)
    compact = {}
    for key, tensor in state.items():
        fits = target != torch.float16 or tensor.abs().max().item() <= FLOAT16_MAX
        keep = not tensor.is_floating_point() or not fits or tensor.numel() == 0
        compact[key] = tensor if keep else tensor.to(target)
    return compact


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
        settings=TrainSettings.from_dict(state["settings"]),
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


def progress_inputs(features: str | Path, split: str | Path) -> dict[str, str]:
    """The identity of a run's inputs kept in its resume state: the sha256 of the feature file
    (cached beside it, ``cached_sha256``) and of the split CSV."""
    return {"features": cached_sha256(Path(features)), "split": file_sha256(split)}


def save_progress(
    checkpoint: Path,
    progress: Progress,
    settings: TrainSettings,
    labels: list[str],
    inputs: dict[str, str],
) -> None:
    """Write ``<checkpoint>.partial`` atomically (after every epoch), naming the settings and
    the inputs (``progress_inputs``) it was made from."""
    state = vars(progress) | {
        "fingerprint": settings.fingerprint(),
        "labels": list(labels),
        "inputs": dict(inputs),
    }
    with atomic_output(progress_path(checkpoint)) as tmp:
        torch.save(state, tmp)


def load_progress(
    checkpoint: Path,
    settings: TrainSettings,
    split: str | Path,
    labels: list[str],
    inputs: dict[str, str],
) -> Progress | None:
    """The progress of an interrupted run with these settings and inputs, or None.

    A progress file of other settings, or made from other features or another split (their
    sha256; a state that records none is of an older move and counts as other inputs), is set
    aside with one line on stderr: the run starts afresh and overwrites it. One of the same
    settings and inputs but other classes is refused: resuming would train on relabelled videos.
    """
    partial = progress_path(checkpoint)
    if not partial.is_file():
        return None
    state = _torch_load(partial, "progress file", "delete it to start the run afresh")
    if state.get("fingerprint") != settings.fingerprint():
        print(f"ignoring {partial}: made with other settings", file=sys.stderr)
        return None
    made_from = state.get("inputs") or {}
    nouns = {"features": "another feature file", "split": f"another split than {split}"}
    other = [noun for name, noun in nouns.items() if made_from.get(name) != inputs[name]]
    if other:
        print(
            f"ignoring {partial}: made from {' and '.join(other)} (sha256 differs); starting "
            "afresh",
            file=sys.stderr,
        )
        return None
    check_class_labels(partial, state.get("labels", labels), split, labels)
    fields = ("epoch", "history", "model", "optimizer", "scheduler", "method_state")
    return Progress(**{name: state.get(name, {}) for name in fields})
