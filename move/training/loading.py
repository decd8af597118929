"""Training input: the split's classes and counts, and the train / test loaders over ``FeatureDataset``.

Reads a split CSV (``move.datasets.splits``) and a feature file (``move.features``). The training order of
each epoch comes from the method's sampler, seeded by (seed, epoch); every item the sampler yields
carries its epoch, so frame draws repeat exactly with any number of loader workers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler

from move.datasets.splits import class_group, read_split
from move.device import resolve_device
from move.errors import MoveError
from move.features import check_stored_features, open_feature_file, video_ids
from move.training.data import (
    EpochBatchSampler,
    FeatureDataset,
    feature_loader,
    parse_class_indices,
)
from move.training.registry import Sampler as SamplerFn
from move.training.resident import ResidentFeatures, ResidentLoader, keep_on_device
from move.training.settings import TrainSettings


@dataclass
class Problem:
    """What training needs to know about the data: classes, their counts and groups."""

    n_classes: int
    labels: list[str]
    train_counts: np.ndarray
    groups: np.ndarray
    train: pd.DataFrame
    test: pd.DataFrame

    def train_labels(self) -> list[list[int]]:
        """Class indices of every training video, in split order."""
        return [parse_class_indices(v) for v in self.train.class_index]


def load_problem(
    split_path: str | Path, features_path: str | Path, head_min: int, tail_max: int
) -> Problem:
    """Read the split, check every listed video has features, and count classes."""
    split = read_split(split_path)
    with open_feature_file(features_path) as handle:
        present = set(video_ids(handle))
    missing = sorted(set(split.video_id) - present)
    if missing:
        raise MoveError(
            f"{len(missing)} video(s) of split {split_path} are not in {features_path} "
            f"(e.g. {missing[0]}): regenerate the split from this feature file"
        )
    labels_of = dict(zip(split.video_id, split.label.astype(str), strict=True))
    fix = "delete it and rerun the extract stage (features from working weights)"
    for warning in check_stored_features(features_path, labels_of, fix):
        print(f"warning: {warning}", file=sys.stderr)
    class_lists = [parse_class_indices(v) for v in split.class_index]
    n_classes = max(max(c) for c in class_lists) + 1
    labels = [""] * n_classes
    for classes, label in zip(class_lists, split.label, strict=True):
        for c, name in zip(classes, str(label).split(";"), strict=False):
            labels[c] = name
    train = split[split.split == "train"].reset_index(drop=True)
    test = split[split.split == "test"].reset_index(drop=True)
    if train.empty or test.empty:
        raise MoveError(f"split {split_path} needs both train and test videos")
    counts = np.zeros(n_classes, dtype=np.int64)
    for value in train.class_index:
        counts[parse_class_indices(value)] += 1
    groups = np.array([class_group(int(n), head_min, tail_max) for n in counts])
    return Problem(n_classes, labels, counts, groups, train, test)


class EpochSampler(Sampler):
    """Yields ``(video index, anchor class)`` in the order the method's sampler draws.

    As the authors' loaders, the last partial batch is kept, unless it would hold a single video
    (BatchNorm cannot train on one); that one draw is left out.
    """

    def __init__(
        self,
        labels: list[list[int]],
        n_classes: int,
        draw: SamplerFn,
        seed: int,
        batch_size: int,
        options: Any = None,
    ):
        self.labels, self.n_classes, self.draw = labels, n_classes, draw
        self.seed, self.batch_size, self.options = seed, batch_size, options
        self.epoch = 0
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's order next (seeded by (seed, epoch))."""
        self.epoch = epoch

    def draws(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's (video order, anchors), anchors -1 when the sampler has none."""
        if self._cache is None or self._cache[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch, 7])
            order, anchors = self.draw(self.labels, self.n_classes, rng, self.epoch, self.options)
            order = np.asarray(order, dtype=np.int64)
            anchors = np.full(len(order), -1) if anchors is None else np.asarray(anchors)
            if len(order) > 1 and len(order) % self.batch_size == 1:
                order, anchors = order[:-1], anchors[:-1]
            self._cache = (self.epoch, order, anchors)
        return self._cache[1], self._cache[2]

    def __len__(self) -> int:
        return len(self.draws()[0])

    def __iter__(self):
        order, anchors = self.draws()
        return iter([(int(i), int(a)) for i, a in zip(order, anchors, strict=True)])


class DrawnVideos(Dataset):
    """``FeatureDataset`` read a batch at a time by ``(epoch, [(index, anchor), ...])``.

    Returns the batch ``(features, targets, indices)`` as ``FeatureDataset.read_batch`` plus the
    anchors ``[B]`` (what ``feature_loader``'s epoch-tagged batches carry to the workers).
    """

    def __init__(self, videos: FeatureDataset):
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, list[tuple[int, int]]]):
        epoch, draws = key
        indices = [index for index, _ in draws]
        x, y, index = self.videos.read_batch(indices, epoch)
        return x, y, index, torch.as_tensor([anchor for _, anchor in draws], dtype=torch.int64)


def make_loaders(
    problem: Problem, features: Path, settings: TrainSettings, draw: SamplerFn, options: Any = None
) -> tuple[DataLoader, DataLoader]:
    """Training loader (the order ``draw`` gives, sampled frames) and test loader (uniform frames).

    ``draw`` is the method's sampler, called with the method's settings ``options``. Both read
    whole batches in the workers and keep the stored dtype (``.float()`` on the device), except
    where the split's features fit in ``settings.features_on_device`` of a CUDA device's memory:
    then they live there and batches are drawn on it (``move.training.resident``, same values).
    """
    train_set = FeatureDataset(
        features, problem.train, problem.n_classes, settings.frames_train, True, settings.seed
    )
    test_set = FeatureDataset(
        features, problem.test, problem.n_classes, settings.frames_test, False
    )
    sampler = EpochSampler(
        problem.train_labels(), problem.n_classes, draw, settings.seed, settings.batch_size, options
    )
    s = settings
    device = resolve_device(s.device)
    if keep_on_device(device, s.features_on_device, train_set, test_set):
        print(f"keeping the features of {features} on {device}", file=sys.stderr)
        return (
            ResidentLoader(
                DrawnVideos(train_set),
                ResidentFeatures(train_set, device),
                EpochBatchSampler(sampler, s.batch_size, False),
                anchors=True,
                num_workers=s.num_workers,
            ),
            ResidentLoader(
                test_set,
                ResidentFeatures(test_set, device),
                EpochBatchSampler(SequentialSampler(test_set), s.batch_size, False),
                anchors=False,
                num_workers=s.num_workers,
            ),
        )
    train_loader = feature_loader(
        DrawnVideos(train_set), s.batch_size, sampler, s.num_workers, device=s.device
    )
    test_loader = feature_loader(test_set, s.batch_size, None, s.num_workers, device=s.device)
    return train_loader, test_loader
