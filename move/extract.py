"""Stage 2, extraction: decode videos and write per-frame backbone features to HDF5.

Reads the videos listed in an annotations CSV (Kinetics columns) under a video root; writes
``features/<dataset>/<backbone>.h5`` (layout in ``move.features``) and
``<backbone>.failures.csv`` listing every video that could not be decoded, with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from move.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone, file_sha256
from move.device import resolve_device
from move.errors import MoveError
from move.features import create_feature_file, write_video_features
from move.video import VideoDecodeError, index_video_files, kinetics_video_id, read_frames

ANNOTATION_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


@dataclass(frozen=True)
class ExtractSettings:
    """How frames are sampled and preprocessed, and how the backbone runs."""

    backbone: str = "resnet50"
    weights: str = "none"
    frames: int = 8
    resize: int = 256
    crop: int = 224
    batch_size: int = 64
    num_workers: int = 0
    device: str = "auto"
    dtype: str = "float16"


def read_annotations(path: str | Path) -> pd.DataFrame:
    """Read a Kinetics-style annotations CSV and add ``video_id``; refuse missing columns."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(
            f"annotations file {path} not found: check the dataset's 'annotations' path in config"
        )
    table = pd.read_csv(path, dtype={"youtube_id": str, "label": str})
    missing = [c for c in ANNOTATION_COLUMNS if c not in table.columns]
    if missing:
        raise MoveError(
            f"annotations file {path} lacks column(s) {', '.join(missing)}: "
            f"expected {','.join(ANNOTATION_COLUMNS)}"
        )
    table["video_id"] = [
        kinetics_video_id(y, s, e)
        for y, s, e in zip(table.youtube_id, table.time_start, table.time_end, strict=True)
    ]
    return table


def list_videos(annotations: str | Path, video_root: str | Path) -> pd.DataFrame:
    """Videos to extract: ``video_id, label, split, path`` (path empty where no file was found)."""
    root = Path(video_root)
    if not root.is_dir():
        raise MoveError(
            f"video folder {root} not found: check the dataset's 'videos' path in config"
        )
    table = read_annotations(annotations)
    files = index_video_files(root)
    table["path"] = [str(files.get(v, "")) for v in table.video_id]
    return (
        table[["video_id", "label", "split", "path"]]
        .drop_duplicates("video_id")
        .reset_index(drop=True)
    )


def preprocess_frames(
    frames: np.ndarray, resize: int, crop: int, mean: tuple, std: tuple
) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> normalised float ``[T, 3, crop, crop]``.

    Shorter side resized to ``resize`` (bilinear, antialiased), then a centre crop, then
    ImageNet mean/std: the test-time preprocessing the ResNet/TSM backbones were trained with.
    """
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)
    height, width = video.shape[-2:]
    scale = resize / min(height, width)
    size = (max(crop, round(height * scale)), max(crop, round(width * scale)))
    video = F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - crop) // 2, (size[1] - crop) // 2
    video = video[:, :, top : top + crop, left : left + crop]
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    return (video - mean_t) / std_t


class DecodedVideos(Dataset):
    """Decodes and preprocesses one video per item (runs in DataLoader workers)."""

    def __init__(self, videos: pd.DataFrame, settings: ExtractSettings, mean: tuple, std: tuple):
        self.videos = videos.reset_index(drop=True)
        self.settings, self.mean, self.std = settings, mean, std

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        item = {"video_id": row.video_id, "label": row.label, "path": row.path}
        try:
            if not row.path:
                raise VideoDecodeError("file missing")
            frames, n_frames = read_frames(row.path, self.settings.frames)
            s = self.settings
            item.update(
                frames=preprocess_frames(frames, s.resize, s.crop, self.mean, self.std),
                n_frames=n_frames,
                error=None,
            )
        except VideoDecodeError as error:
            item.update(frames=None, n_frames=0, error=str(error))
        return item


@torch.inference_mode()
def embed_frames(
    model: torch.nn.Module, frames: torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """Run the backbone over ``[T, 3, H, W]`` frames in batches -> float32 ``[T, D]``."""
    outputs = []
    for start in range(0, len(frames), batch_size):
        batch = frames[start : start + batch_size].to(device, non_blocking=True)
        if device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                outputs.append(model.forward_features(batch).float().cpu())
        else:
            outputs.append(model.forward_features(batch).float())
    return torch.cat(outputs).numpy()


def extract_features(
    videos: pd.DataFrame,
    out: str | Path,
    failures: str | Path,
    settings: ExtractSettings,
    progress: bool = True,
) -> dict:
    """Extract features of ``videos`` into ``out`` (HDF5) and log failures to ``failures`` (CSV).

    Both files are written to temporaries and renamed at the end, so an interrupted run never
    leaves a file that looks finished. Returns counts of extracted and failed videos.
    """
    out, failures = Path(out), Path(failures)
    out.parent.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    model = create_backbone(settings.backbone, settings.weights).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    weights_sha = "none" if settings.weights.lower() == "none" else file_sha256(settings.weights)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    loader = DataLoader(
        DecodedVideos(videos, settings, mean, std),
        batch_size=None,
        shuffle=False,
        num_workers=settings.num_workers,
    )
    tmp = out.with_name(out.name + ".tmp")
    failed = []
    attrs = {
        "backbone": settings.backbone,
        "weights": str(settings.weights),
        "weights_sha256": weights_sha,
        "frames": settings.frames,
        "resize": settings.resize,
        "crop": settings.crop,
        "mean": mean,
        "std": std,
        "dtype": settings.dtype,
    }
    with create_feature_file(tmp, attrs) as handle:
        for item in tqdm(
            loader,
            total=len(videos),
            desc=f"extract {settings.backbone}",
            unit="video",
            disable=not progress,
        ):
            if item["error"] is not None:
                failed.append((item["video_id"], item["path"], item["error"]))
                continue
            features = embed_frames(model, item["frames"], settings.batch_size, device)
            handle.attrs["feature_dim"] = features.shape[1]
            write_video_features(
                handle,
                item["video_id"],
                features.astype(settings.dtype),
                item["label"],
                item["n_frames"],
            )
        handle.attrs["complete"] = True
    failures_tmp = failures.with_name(failures.name + ".tmp")
    pd.DataFrame(failed, columns=["video_id", "path", "reason"]).to_csv(failures_tmp, index=False)
    os.replace(tmp, out)
    os.replace(failures_tmp, failures)
    return {"extracted": len(videos) - len(failed), "failed": len(failed)}
