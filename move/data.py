"""Stage 4 input: frame-feature datasets for training and testing, read from HDF5 and a split CSV.

Training samples ``frames_train`` sorted random frame indices with replacement (the authors'
sampling); testing takes ``frames_test`` uniformly spaced frames (repeating frames if fewer).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from move.errors import MoveError
from move.features import VIDEOS


def parse_class_indices(value: str) -> list[int]:
    """``'3'`` or ``'3;17'`` (multi-label) -> ``[3]`` or ``[3, 17]``."""
    return [int(part) for part in str(value).split(";") if part != ""]


def multi_hot(labels: list[list[int]], n_classes: int) -> np.ndarray:
    """Target matrix ``[N, C]`` with ones at each sample's classes."""
    targets = np.zeros((len(labels), n_classes), dtype=np.float32)
    for row, classes in enumerate(labels):
        targets[row, classes] = 1.0
    return targets


def uniform_frame_indices(n_stored: int, n_frames: int) -> np.ndarray:
    """``n_frames`` evenly spaced indices over ``n_stored`` frames, rounded down as the authors'
    ``uniform_sample`` (``np.linspace(...).astype(int)``).

    Videos with fewer stored frames repeat frames, so that every test video has the same length
    and videos of different lengths (VideoLT) batch together.
    """
    if n_stored == n_frames:
        return np.arange(n_stored)
    return np.linspace(0, n_stored - 1, n_frames).astype(np.int64)


def random_frame_indices(n_stored: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``n_frames`` random indices with replacement, sorted (temporal order kept)."""
    return np.sort(rng.integers(0, n_stored, size=n_frames))


class FeatureDataset(Dataset):
    """Videos of one split: ``(features [T, D] float32, multi-hot target [C], index)``.

    The HDF5 file is opened lazily in each worker; memory stays flat in the number of videos.
    Training frame draws are seeded by (seed, epoch, index), so runs repeat exactly.
    """

    def __init__(
        self,
        features_path: str | Path,
        split: pd.DataFrame,
        n_classes: int,
        frames: int,
        train: bool,
        seed: int = 0,
    ):
        self.path = str(features_path)
        self.video_ids = split.video_id.tolist()
        self.targets = multi_hot([parse_class_indices(v) for v in split.class_index], n_classes)
        self.frames, self.train, self.seed = frames, train, seed
        self.epoch = 0
        self._handle: h5py.File | None = None

    def __len__(self) -> int:
        return len(self.video_ids)

    def set_epoch(self, epoch: int) -> None:
        """Change the frame draws for a new epoch."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self._handle is None:
            self._handle = h5py.File(self.path, "r")
        dataset = self._handle[VIDEOS][self.video_ids[index]]
        n_stored = dataset.shape[0]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            indices = random_frame_indices(n_stored, self.frames, rng)
        else:
            indices = uniform_frame_indices(n_stored, self.frames)
        unique, inverse = np.unique(indices, return_inverse=True)
        features = np.asarray(dataset[unique], dtype=np.float32)[inverse]
        if not np.isfinite(features).all():
            raise MoveError(
                f"video {self.video_ids[index]} in {self.path} has NaN/inf features: "
                "re-extract it or drop it from the split"
            )
        return torch.from_numpy(features), torch.from_numpy(self.targets[index]), index
