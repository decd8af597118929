"""Decoding for extraction: the videos an annotations CSV lists under a video root, decoded in
DataLoader workers to uint8 frames, with as many workers as keep the backbone busy."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from move.annotations import read_annotations
from move.errors import MoveError
from move.extraction.backbones import get_backbone
from move.extraction.embedding import clip_batch_size, forward_frames
from move.extraction.preprocess import normalise_frames, resize_and_crop
from move.extraction.settings import ExtractSettings
from move.extraction.throughput import (
    encoded_jpeg_frames,
    measure_backbone_rate,
    measure_decode_rate,
    workers_for,
)
from move.extraction.video import VideoDecodeError, read_frames
from move.extraction.video_files import find_video_files


def list_videos(annotations: str | Path, video_root: str | Path) -> pd.DataFrame:
    """Videos to extract: ``video_id, label, split, path`` (path empty where no file was found)."""
    root = Path(video_root)
    if not root.is_dir():
        raise MoveError(
            f"video folder {root} not found: check the dataset's 'videos' path in config"
        )
    table = read_annotations(annotations)
    files = find_video_files(table.video_id, root)
    table["path"] = [str(files.get(v, "")) for v in table.video_id]
    return (
        table[["video_id", "label", "split", "path"]]
        .drop_duplicates("video_id")
        .reset_index(drop=True)
    )


class DecodedVideos(Dataset):
    """Decodes one video per item into uint8 ``[T, 3, crop, crop]`` (runs in DataLoader workers).

    Normalisation is left to the device (``normalise_frames``), so a worker ships a quarter of
    the bytes of float32 frames. With ``jpeg_on_device`` a JPEG frame folder is only read: the
    item carries its chosen frames' bytes (``encoded``), which ``decode_on_device`` decodes.
    """

    def __init__(
        self, videos: pd.DataFrame, settings: ExtractSettings, jpeg_on_device: bool = False
    ):
        self.videos = videos.reset_index(drop=True)
        self.settings = settings
        self.jpeg_on_device = jpeg_on_device

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        item = {"video_id": row.video_id, "label": row.label, "path": row.path}
        s = self.settings
        try:
            if not row.path:
                raise VideoDecodeError("file missing")
            encoded = encoded_jpeg_frames(row.path, s.frames) if self.jpeg_on_device else None
            if encoded is not None:
                item.update(encoded=encoded, frames=None, n_frames=encoded["n_frames"], error=None)
                return item
            frames, n_frames = read_frames(
                row.path,
                s.frames,
                lambda chunk: resize_and_crop(chunk, s.resize, s.crop),
                s.min_decoded_share,
            )
            item.update(frames=frames, n_frames=n_frames, error=None)
        except VideoDecodeError as error:
            item.update(frames=None, n_frames=0, error=str(error))
        except MemoryError:
            raise
        except Exception as error:  # anything else about this one video is its failure too
            text = " ".join(str(error).split())[:160] or "no message"
            item.update(
                frames=None, n_frames=0, error=f"could not read ({type(error).__name__}: {text})"
            )
        return item


def decode_workers(requested: int | None = None) -> int:
    """Decode worker processes: ``requested``, or one per CPU core this process may use, less one.

    The one place the default is set: the main process feeds the backbone, the rest decode
    (a Snakemake/SLURM job passes ``threads - 1``; its CPU set bounds the default too).
    """
    if requested is not None:
        return requested
    return max(0, len(os.sched_getaffinity(0)) - 1)


def decode_loader(
    videos: pd.DataFrame,
    settings: ExtractSettings,
    device: torch.device,
    jpeg_on_device: bool = False,
) -> DataLoader:
    """Decoded videos in list order: ``settings.num_workers`` worker processes, pinned on CUDA
    (with ``jpeg_on_device``, JPEG frame folders only read, for ``decode_on_device``)."""
    workers = settings.num_workers
    return DataLoader(
        DecodedVideos(videos, settings, jpeg_on_device),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )


def sized_workers(
    videos: pd.DataFrame,
    settings: ExtractSettings,
    model: torch.nn.Module,
    device: torch.device,
    jpeg_on_device: bool = False,
    log: bool = True,
) -> ExtractSettings:
    """``settings`` with as many decode workers as keep the backbone busy, at most its
    ``num_workers`` (``move.extraction.throughput.workers_for``): one worker's decode rate
    measured on the first videos, the backbone's on one full batch. With ``log`` the figures
    go to stderr (the job's log, beside the progress bar). With 0 workers (decoding in this
    process) or nothing to do, nothing is measured."""
    if settings.num_workers == 0 or videos.empty:
        return settings
    decode_rate = measure_decode_rate(DecodedVideos(videos, settings, jpeg_on_device))
    size = clip_batch_size(model, settings.batch_size)
    frames = torch.zeros(size, 3, settings.crop, settings.crop, dtype=torch.uint8, device=device)
    entry = get_backbone(settings.backbone)

    def forward() -> None:
        with torch.inference_mode():
            forward_frames(model, normalise_frames(frames, entry.mean, entry.std))

    backbone_rate = measure_backbone_rate(forward, size, device)
    sizing = workers_for(decode_rate, backbone_rate, settings.num_workers)
    if log:
        print(sizing.line(settings.backbone, device), file=sys.stderr)
    return dataclasses.replace(settings, num_workers=sizing.workers)
