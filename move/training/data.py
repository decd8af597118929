"""Stage 4 input: frame-feature datasets for training and testing, read from HDF5 and a split CSV.

Training samples ``frames_train`` sorted random frame indices with replacement (the authors'
sampling); testing takes ``frames_test`` uniformly spaced frames (repeating frames if fewer).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from move.device import resolve_device
from move.errors import MoveError
from move.features import VIDEOS, open_feature_file


def parse_class_indices(value: str) -> list[int]:
    """``'3'`` or ``'3;17'`` (multi-label) -> ``[3]`` or ``[3, 17]``."""
    return [int(part) for part in str(value).split(";") if part != ""]


def check_fits_checkpoint(
    checkpoint: str | Path,
    trained: tuple[int, int],
    features: str | Path,
    split: str | Path,
    split_classes: int,
) -> None:
    """Refuse features of another width, or a split with another number of classes, than a
    checkpoint was trained on (``trained``: feature width, classes); the model would fail on
    shapes, or score the wrong classes."""
    feature_dim, n_classes = trained
    with open_feature_file(features) as handle:
        width = int(handle.attrs.get("feature_dim", feature_dim))
    if width != feature_dim:
        raise MoveError(
            f"checkpoint {checkpoint} takes {feature_dim}-d features but {features} holds "
            f"{width}-d ones: evaluate on the feature file it was trained on"
        )
    if split_classes != n_classes:
        raise MoveError(
            f"checkpoint {checkpoint} has {n_classes} classes but split {split} has "
            f"{split_classes}: evaluate on the split it was trained on"
        )


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

    ``dataset[[i, j, ...]]`` (or ``dataset[(epoch, [i, j, ...])]``, what ``feature_loader``
    asks for) returns a whole batch at once, already collated, in the stored dtype: features
    ``[B, T, D]`` (float16 by default), targets ``[B, C]``, indices ``[B]``. Each video is read
    whole with one ``pread`` at its HDF5 offset (contiguous datasets; others through h5py) and
    its frames are picked in numpy. The file is opened lazily in each worker; memory stays flat
    in the number of videos. Training frame draws are seeded by (seed, epoch, index), so runs
    repeat exactly.
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
        self._reader: FeatureReader | None = None

    def __getstate__(self) -> dict:
        """Workers get the dataset without the open file: each opens its own."""
        return self.__dict__ | {"_reader": None}

    def __len__(self) -> int:
        return len(self.video_ids)

    def set_epoch(self, epoch: int) -> None:
        """Change the frame draws for a new epoch."""
        self.epoch = epoch

    def frame_indices(self, index: int, n_stored: int, epoch: int) -> np.ndarray:
        """Which stored frames video ``index`` contributes in ``epoch`` (seeded: runs repeat)."""
        if self.train:
            rng = np.random.default_rng([self.seed, epoch, index])
            return random_frame_indices(n_stored, self.frames, rng)
        return uniform_frame_indices(n_stored, self.frames)

    def __getitem__(self, key):
        """An index: one video, float32. A list of indices, or ``(epoch, list)``: a batch."""
        if isinstance(key, tuple):
            return self.read_batch(key[1], key[0])
        if not isinstance(key, int | np.integer):
            return self.read_batch(key, self.epoch)
        features, targets, _ = self.read_batch([key], self.epoch)
        return features[0].float(), targets[0], key

    def read_batch(
        self, indices: list[int], epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features ``[B, T, D]`` (stored dtype), targets ``[B, C]`` and indices of a batch."""
        if self._reader is None:
            self._reader = FeatureReader(self.path)
        batch = None
        for row, index in enumerate(indices):
            stored = self._reader.read(self.video_ids[index])
            if batch is None:
                batch = np.empty((len(indices), self.frames, stored.shape[1]), stored.dtype)
            np.take(stored, self.frame_indices(index, len(stored), epoch), axis=0, out=batch[row])
            if not all_finite(batch[row]):
                raise MoveError(
                    f"video {self.video_ids[index]} in {self.path} has NaN/inf features: "
                    "re-extract it or drop it from the split"
                )
        return (
            torch.from_numpy(batch),
            torch.from_numpy(self.targets[indices]),
            torch.as_tensor(indices, dtype=torch.int64),
        )


def all_finite(features: np.ndarray) -> bool:
    """No NaN/inf in ``features`` (float16 by its exponent bits: numpy's isfinite is slow on it)."""
    if features.dtype == np.float16:
        return np.bitwise_and(features.view(np.uint16), 0x7C00).max() != 0x7C00
    return bool(np.isfinite(features).all())


class FeatureReader:
    """Reads one video's stored ``[n, D]`` features: a ``pread`` at the dataset's file offset.

    HDF5 stores an uncompressed, unchunked dataset as one contiguous block, so its bytes can be
    read directly into a reused buffer, skipping h5py's per-read overhead (most of the loader's
    time before); other layouts are read through h5py. Offsets are looked up once per video.
    """

    def __init__(self, path: str):
        self.path = path
        self.handle = h5py.File(path, "r")
        self.videos = self.handle[VIDEOS]
        self.file = open(path, "rb", buffering=0)  # noqa: SIM115 (lives as long as the reader)
        self.layout: dict[str, tuple[int | None, tuple[int, ...], np.dtype]] = {}
        self.buffers: dict[tuple, np.ndarray] = {}

    def read(self, video_id: str) -> np.ndarray:
        """The video's features; a contiguous one in a buffer that the next read reuses."""
        if video_id not in self.layout:  # h5py's low-level calls: 4x cheaper
            dataset = h5py.h5d.open(self.videos.id, video_id.encode())
            offset = dataset.get_offset()  # None unless one contiguous block (unchunked)
            self.layout[video_id] = (offset, dataset.shape, dataset.dtype)
        offset, shape, dtype = self.layout[video_id]
        if offset is None:
            return self.videos[video_id][()]
        buffer = self.buffers.get((shape, dtype))
        if buffer is None:
            buffer = self.buffers[(shape, dtype)] = np.empty(shape, dtype)
        if os.preadv(self.file.fileno(), [buffer], offset) != buffer.nbytes:
            raise MoveError(f"feature file {self.path} is truncated: re-extract it")
        return buffer


class EpochBatchSampler(BatchSampler):
    """Batches of a sampler's indices, each tagged with the epoch: ``(epoch, [i, ...])``.

    The tag carries the epoch to the DataLoader's workers, which hold their own copy of the
    dataset (persistent workers never see a later ``set_epoch`` on the main process's copy).
    """

    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the batches and of the wrapped sampler's order."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        for batch in super().__iter__():
            yield self.epoch, batch


def feature_loader(
    dataset: Dataset,
    batch_size: int,
    sampler: Sampler | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    device: str = "cpu",
) -> DataLoader:
    """Batches ``(features [B, T, D], targets, indices)`` of ``dataset`` in ``sampler``'s order.

    Each batch is read in one call in a worker (no per-video collation); workers persist across
    epochs and prefetch 4 batches each; batches are pinned for a CUDA ``device``. Features keep
    the stored dtype (float16 by default, half the bytes): convert on the device (``.float()``).
    ``loader.sampler.set_epoch`` sets the epoch of the order and of the frame draws.
    """
    order = sampler if sampler is not None else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=EpochBatchSampler(order, batch_size, drop_last),
        num_workers=num_workers,
        pin_memory=resolve_device(device).type == "cuda",
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers else None,
    )
