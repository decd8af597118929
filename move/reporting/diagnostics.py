"""Values inside a trained model for the figures: PSA attention, codebook assignments, confidences.

Loads a checkpoint (``move.training.artefacts``) and runs the model's submodules directly, so
plots can show what the aggregators do (the paper's Fig. 2) and how confident the classifier is
on original vs. interpolated samples (Fig. 4). Works for every Table 4 row: a model without PSA
has no attention, one without the codebook no assignment, and the frame-wise classifier (row a)
shows each frame's score instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from move.errors import MoveError
from move.features import open_feature_file, read_video_features
from move.training.artefacts import Checkpoint, load_checkpoint
from move.training.data import parse_class_indices


def load_model(checkpoint: str | Path) -> tuple[torch.nn.Module, Checkpoint]:
    """The checkpoint's model in eval mode on the CPU, and the checkpoint itself."""
    state = load_checkpoint(checkpoint)
    return state.build_model(), state


@torch.no_grad()
def aggregator_maps(model: torch.nn.Module, features: np.ndarray) -> dict[str, np.ndarray]:
    """One video ``[T, D]`` -> what the model weighs its frames by, and its class scores.

    ``attention [heads, T]`` (PSA), ``assignment [T, K]`` (rho_k(x_t) of Eq. 3 on the
    BatchNorm'd input, as the forward pass), ``frame_scores [T]`` (frame-wise classifier: each
    frame's sigmoid score of the video's top class); a key is absent when the model has no such
    part. ``scores [C]`` always.
    """
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))[None]
    scores = torch.sigmoid(model(x))[0]
    maps = {"scores": scores.numpy()}
    if model.psa is not None:
        maps["attention"] = model.psa(x)[1][0].numpy()
    if model.codebook is not None:
        normed = model.codebook.input_norm(x.transpose(1, 2)).transpose(1, 2)
        maps["assignment"] = model.codebook.vlad.assignment(normed)[0].numpy()
    if not model.settings.aggregators:
        top = int(scores.argmax())
        maps["frame_scores"] = torch.sigmoid(model.classifier(x[0]))[:, top].numpy()
    return maps


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


def inspected_videos(
    checkpoint: str | Path,
    features: str | Path,
    split_path: str | Path,
    video_ids: list[str] | None = None,
    count: int = 2,
    frame_source: tuple[str, str] | None = None,
) -> list[dict]:
    """Maps (``aggregator_maps``) of the chosen test videos, with decoded frames when
    ``frame_source`` (annotations CSV, video root) finds them: what ``move plot attention`` draws.
    """
    from move.datasets.splits import read_split
    from move.extraction.decoding import list_videos
    from move.extraction.video import VideoDecodeError, read_frames

    model, state = load_model(checkpoint)
    split = read_split(split_path)
    chosen = video_ids or [v for v, _ in pick_videos(split, state.train_counts, count)]
    stored = read_features(features, chosen)
    paths = {}
    if frame_source is not None:
        listed = list_videos(*frame_source)
        paths = dict(zip(listed.video_id, listed.path, strict=True))
    labels = dict(zip(split.video_id, split.label, strict=False))
    videos = []
    for video_id in chosen:
        maps = aggregator_maps(model, stored[video_id])
        frames = None
        if paths.get(video_id):
            try:
                frames, _ = read_frames(paths[video_id], len(stored[video_id]))
            except VideoDecodeError as error:
                print(f"warning: no frame strip for {video_id}: {error}", file=sys.stderr)
        videos.append(
            {"video_id": video_id, "label": labels.get(video_id, "?"), "frames": frames} | maps
        )
    return videos


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

    z = what the classifier reads (``represent``: aggregated z, or the frames of a frame-wise
    model) for every video of ``subset``; each class's videos are mixed with a shuffled partner
    of the same class, z_tilde = lam z_i + (1 - lam) z_j (Eq. 12's mixing, no label change), and
    the sigmoid score of the class is averaged. Returns class_index, n_videos, original,
    interpolated, normalised_difference = (original - interpolated) / original.
    """
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
        z = model.represent(torch.stack([x[i] for i in members]))
        permutation = torch.randperm(len(members), generator=generator)
        mixed = lam * z + (1 - lam) * z[permutation]
        original = torch.sigmoid(model.head(z))[:, cls].mean().item()
        interpolated = torch.sigmoid(model.head(mixed))[:, cls].mean().item()
        records.append((cls, len(members), original, interpolated))
    table = pd.DataFrame(records, columns=["class_index", "n_videos", "original", "interpolated"])
    table["normalised_difference"] = (table.original - table.interpolated) / table.original
    return table
