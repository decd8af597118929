"""Features kept on the training device: a split's stored frames in one tensor there, frames and
batches drawn on the device, so a GPU never waits on a loader.

The frames drawn are ``FeatureDataset.frame_indices`` (the same seeded draws) and the batches the
same sampler's, so a resident run reads exactly the values the worker loader reads: the same
numbers for the same seed. ``make_loaders`` keeps a split resident where its bytes fit in
``train.features_on_device`` (a share of the device's memory; 0: never); otherwise the worker
loader prefetches batches into pinned memory.
"""

from __future__ import annotations

import numpy as np
import torch

from move.errors import MoveError
from move.training.data import EpochBatchSampler, FeatureDataset, FeatureReader, all_finite


def stored_bytes(dataset: FeatureDataset) -> int:
    """Bytes of every stored frame of the dataset's videos (from the HDF5 layout, nothing read)."""
    import h5py

    from move.features import VIDEOS

    with h5py.File(dataset.path, "r") as handle:
        videos = handle[VIDEOS]
        return sum(videos[v].size * videos[v].dtype.itemsize for v in dataset.video_ids)


def keep_on_device(device: torch.device, share: float, *datasets: FeatureDataset) -> bool:
    """Whether the datasets' features may live on ``device``: a CUDA device where they take at
    most ``share`` of its memory and fit in what is free (the model, activations and Adam state
    need the rest). Their size is read from the file's layout only when it matters."""
    if device.type != "cuda" or share <= 0:
        return False
    free, total = torch.cuda.mem_get_info(device)
    return sum(stored_bytes(dataset) for dataset in datasets) <= min(share * total, free)


class ResidentFeatures:
    """Every stored frame of a dataset's videos in one ``[frames, D]`` tensor on ``device``."""

    def __init__(self, dataset: FeatureDataset, device: torch.device):
        self.dataset, self.device = dataset, device
        reader = FeatureReader(dataset.path)
        shapes = [reader.videos[video_id].shape for video_id in dataset.video_ids]  # metadata
        dtype = torch.from_numpy(np.empty(0, reader.videos[dataset.video_ids[0]].dtype)).dtype
        self.lengths = np.asarray([shape[0] for shape in shapes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.frames = torch.empty(
            (int(self.lengths.sum()), shapes[0][1]), dtype=dtype, device=device
        )
        for index, video_id in enumerate(dataset.video_ids):
            stored = reader.read(video_id)
            if not all_finite(stored):
                raise MoveError(
                    f"video {video_id} in {dataset.path} has NaN/inf features: re-extract it or "
                    "drop it from the split"
                )
            start = self.offsets[index]
            self.frames[start : start + len(stored)] = torch.from_numpy(
                np.ascontiguousarray(stored)
            )

    def batch(
        self, indices: list[int], epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``FeatureDataset.read_batch`` on the device: features ``[B, T, D]``, targets, indices."""
        rows = [
            self.offsets[i] + self.dataset.frame_indices(i, int(self.lengths[i]), epoch)
            for i in indices
        ]
        gather = torch.from_numpy(np.concatenate(rows)).to(self.device)
        features = self.frames.index_select(0, gather).view(len(indices), self.dataset.frames, -1)
        targets = torch.from_numpy(self.dataset.targets[indices]).to(self.device)
        return features, targets, torch.as_tensor(indices, dtype=torch.int64)


class ResidentLoader:
    """A loader over resident features with the worker loader's interface (``sampler.set_epoch``,
    ``dataset``, ``len``); batches come in the sampler's order, already on the device. Train
    batches (sampled ``(index, anchor)`` pairs) carry the anchors, as ``DrawnVideos`` does.

    A DataLoader draws one number from torch's global generator for each iterator it creates
    (every pass without workers; the first only with persistent workers): this loader draws as
    the worker loader with ``num_workers`` would, so dropout and every later torch draw of the run
    are the same and a resident run gives the same numbers."""

    def __init__(
        self,
        dataset,
        store: ResidentFeatures,
        sampler: EpochBatchSampler,
        anchors: bool,
        num_workers: int,
    ):
        self.dataset, self.store, self.sampler, self.anchors = dataset, store, sampler, anchors
        self.num_workers, self.passes = num_workers, 0

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        if self.num_workers == 0 or self.passes == 0:  # the DataLoader's base seed draw
            torch.empty((), dtype=torch.int64).random_()
        self.passes += 1
        for epoch, draws in self.sampler:
            if not self.anchors:
                yield self.store.batch(list(draws), epoch)
                continue
            indices = [index for index, _ in draws]
            anchors = torch.as_tensor([anchor for _, anchor in draws], dtype=torch.int64)
            yield (*self.store.batch(indices, epoch), anchors)
