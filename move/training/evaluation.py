"""Evaluation: a model's sigmoid scores on the test videos, and the tables' metrics from them.

``evaluate_checkpoint`` reloads a checkpoint (``move.training.artefacts``), refuses a split whose
classes differ from the ones it was trained on, and scores the split's test videos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from move.device import resolve_device
from move.training.artefacts import check_class_labels, load_checkpoint
from move.training.data import FeatureDataset, check_fits_checkpoint, feature_loader
from move.training.loading import Problem, load_problem
from move.training.metrics import evaluate
from move.training.model import VideoClassifier


@torch.no_grad()
def predict(model: VideoClassifier, loader: DataLoader, device: torch.device) -> np.ndarray:
    """Sigmoid scores ``[N, C]`` for every video of ``loader`` in order."""
    model.eval()
    scores = [
        torch.sigmoid(model(batch[0].to(device, non_blocking=True).float())).cpu()
        for batch in loader
    ]
    return torch.cat(scores).numpy()


def evaluate_model(
    model: VideoClassifier, loader: DataLoader, problem: Problem, device: torch.device
) -> dict:
    """All metrics of the tables on ``loader``'s videos (per-class AP included)."""
    return evaluate(predict(model, loader, device), loader.dataset.targets, problem.groups)


def evaluate_checkpoint(
    checkpoint: str | Path,
    features: str | Path,
    split: str | Path,
    frames_test: int | None = None,
    batch_size: int = 128,
    device: str = "auto",
) -> dict:
    """Reload a checkpoint written by ``train`` and evaluate it on the split's test videos."""
    state = load_checkpoint(checkpoint)
    problem = load_problem(split, features, state.head_min, state.tail_max)
    trained = (state.settings.model.feature_dim, len(state.labels))
    check_fits_checkpoint(checkpoint, trained, features, split, problem.n_classes)
    check_class_labels(checkpoint, state.labels, split, problem.labels)
    dev = resolve_device(device)
    model = state.build_model().to(dev)
    test_set = FeatureDataset(
        features,
        problem.test,
        problem.n_classes,
        frames_test or state.settings.frames_test,
        False,
    )
    return evaluate_model(model, feature_loader(test_set, batch_size, device=device), problem, dev)
