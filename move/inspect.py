"""Values inside a trained model for the figures: PSA attention, codebook assignments, confidences.

Loads a checkpoint written by ``move.train.train`` and runs the model's submodules directly
(no change to ``move.model``), so plots can show what the aggregators do (the paper's Fig. 2)
and how confident the classifier is on original vs. interpolated samples (Fig. 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from move.errors import MoveError
from move.features import open_feature_file, read_video_features


def load_model(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """The checkpoint's model in eval mode on the CPU, and the checkpoint's metadata."""
    from move.model import VideoClassifier
    from move.train import TrainSettings

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MoveError(f"checkpoint {checkpoint} not found: train first (move train)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    settings = TrainSettings.from_dict(state["settings"])
    model = VideoClassifier(state["n_classes"], settings.model)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


@torch.no_grad()
def aggregator_maps(model: torch.nn.Module, features: np.ndarray) -> dict[str, np.ndarray]:
    """One video ``[T, D]`` -> PSA attention ``[heads, T]`` and codebook soft assignment ``[T, K]``.

    The assignment is rho_k(x_t) of Eq. 3, computed on the BatchNorm'd input as in the forward pass.
    """
    if not model.settings.aggregators:
        raise MoveError("this checkpoint has no aggregators (train.aggregators false): no maps")
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))[None]
    _, attention = model.psa(x)
    normed = model.codebook.input_norm(x.transpose(1, 2)).transpose(1, 2)
    assignment = model.codebook.vlad.assignment(normed)
    scores = torch.sigmoid(model(x))[0]
    return {
        "attention": attention[0].numpy(),
        "assignment": assignment[0].numpy(),
        "scores": scores.numpy(),
    }


def read_features(features_path: str | Path, video_ids: list[str]) -> dict[str, np.ndarray]:
    """Stored features of the given videos."""
    with open_feature_file(features_path) as handle:
        missing = [v for v in video_ids if v not in handle["videos"]]
        if missing:
            raise MoveError(f"video {missing[0]} is not in {features_path}: pick a listed video")
        return {v: read_video_features(handle, v) for v in video_ids}


def pick_videos(
    split: pd.DataFrame, train_counts: np.ndarray, count: int = 2
) -> list[tuple[str, int]]:
    """Test videos to show: the first test video of classes spread from head to tail."""
    from move.data import parse_class_indices

    test = split[split.split == "test"]
    order = np.argsort(-np.asarray(train_counts), kind="stable")
    ranks = np.unique(np.linspace(0, len(order) - 1, max(count, 1)).round().astype(int))
    chosen = []
    for rank in ranks:
        cls = int(order[rank])
        rows = test[[cls in parse_class_indices(v) for v in test.class_index]]
        if len(rows):
            chosen.append((str(rows.video_id.iloc[0]), cls))
    return chosen


@torch.no_grad()
def interpolation_confidence(
    model: torch.nn.Module,
    features_path: str | Path,
    split: pd.DataFrame,
    n_classes: int,
    subset: str = "train",
    lam: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-class mean confidence of original and within-class interpolated representations (Fig. 4).

    z = aggregate(x) for every video of ``subset``; each class's videos are mixed with a shuffled
    partner of the same class, z_tilde = lam z_i + (1 - lam) z_j (Eq. 12's mixing, no label
    change), and the sigmoid score of the class is averaged. Returns class_index, n_videos,
    original, interpolated, normalised_difference = (original - interpolated) / original.
    """
    from move.data import parse_class_indices

    rows = split[split.split == subset]
    if rows.empty:
        raise MoveError(f"the split has no '{subset}' videos: use --subset train or test")
    features = read_features(features_path, rows.video_id.tolist())
    classes = [parse_class_indices(v) for v in rows.class_index]
    x = [torch.from_numpy(features[v]) for v in rows.video_id]
    generator = torch.Generator().manual_seed(seed)
    records = []
    for cls in range(n_classes):
        members = [i for i, c in enumerate(classes) if cls in c]
        if not members:
            records.append((cls, 0, np.nan, np.nan))
            continue
        batch = torch.stack([x[i] for i in members])
        if model.settings.aggregators:
            z = model.aggregate(batch)
        else:
            z = batch.mean(dim=1)
        permutation = torch.randperm(len(members), generator=generator)
        mixed = lam * z + (1 - lam) * z[permutation]
        original = torch.sigmoid(model.classifier(z))[:, cls].mean().item()
        interpolated = torch.sigmoid(model.classifier(mixed))[:, cls].mean().item()
        records.append((cls, len(members), original, interpolated))
    table = pd.DataFrame(records, columns=["class_index", "n_videos", "original", "interpolated"])
    table["normalised_difference"] = (table.original - table.interpolated) / table.original
    return table
