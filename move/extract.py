"""Stage 2, extraction: decode videos and write per-frame backbone features to HDF5.

Reads the videos listed in an annotations CSV (Kinetics columns) under a video root; writes
``features/<dataset>/<backbone>.h5`` (layout in ``move.features``) and
``<backbone>.failures.csv`` listing every video that could not be decoded, with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from move.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
from move.device import resolve_device
from move.errors import MoveError, ensure_free_space, removed_on_error
from move.features import VIDEOS, create_feature_file, write_video_features
from move.files import file_sha256
from move.kinetics import find_video_files
from move.video import VideoDecodeError, kinetics_video_id, read_frames

ANNOTATION_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


HDF5_MARGIN = 1 << 20  # bytes of room for HDF5 metadata beyond the features


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
    files = find_video_files(table.video_id, root)
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


def set_compute_threads(threads: int | None) -> int:
    """Pin torch's intra-op thread count (None keeps torch's default); returns the count in use.

    Features are bit-identical only between runs with the same count: PyTorch runs 1x1
    convolutions on fewer than 16 frames with another kernel at 1 thread than at several, and
    some kernels split sums by thread. Across counts they differ by under 1e-5 of the largest
    feature value (about 1e-6 measured), i.e. in the last bits of float16.
    """
    if threads is not None:
        if threads < 1:
            raise MoveError(f"--threads {threads}: give 1 or more torch threads")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@torch.inference_mode()
def embed_frames(
    model: torch.nn.Module, frames: torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """Run the backbone over ``[T, 3, H, W]`` frames in batches -> float32 ``[T, D]``.

    For TSM the batch is a multiple of its ``n_segment`` so clips never straddle batches.
    """
    n_segment = getattr(model, "n_segment", 1)
    batch_size = max(n_segment, batch_size // n_segment * n_segment)
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


def shard_of(video_id: str, count: int) -> int:
    """Shard (0..count-1) a video belongs to: crc32 of its id, so stable across list edits."""
    return zlib.crc32(video_id.encode()) % count


def select_shard(videos: pd.DataFrame, index: int, count: int) -> pd.DataFrame:
    """The deterministic ``index``-th of ``count`` disjoint parts of ``videos`` (order kept)."""
    if not 0 <= index < count:
        raise MoveError(f"shard {index}/{count} is out of range: use --shard i/n with 0 <= i < n")
    keep = [shard_of(v, count) == index for v in videos.video_id]
    return videos[keep].reset_index(drop=True)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; a malformed value is a one-line error."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise MoveError(f"--shard '{text}' is not i/n (e.g. 0/4)") from None
    if count < 1 or not 0 <= index < count:
        raise MoveError(f"--shard '{text}' needs n >= 1 and 0 <= i < n")
    return index, count


FAILURE_COLUMNS = ["video_id", "path", "reason"]


def _run_attrs(settings: ExtractSettings, weights_sha: str, mean: tuple, std: tuple) -> dict:
    return {
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


def _same_attrs(stored: dict, wanted: dict) -> bool:
    return all(np.array_equal(np.asarray(stored.get(k)), np.asarray(v)) for k, v in wanted.items())


def _load_chunks(partial: Path, attrs: dict, wanted: set[str]) -> tuple[list[Path], set[str]]:
    """Finished chunk files of an interrupted run and the video ids they hold.

    A chunk that is unreadable, was made with other settings or holds videos no longer in the
    list is discarded with a warning.
    """
    chunks, done = [], set()
    for chunk in sorted(partial.glob("chunk-*.h5")):
        try:
            with h5py.File(chunk, "r") as handle:
                if not _same_attrs(dict(handle.attrs), attrs):
                    raise ValueError("made with other settings")
                ids = list(handle[VIDEOS].keys()) + [
                    row[0] for row in json.loads(handle.attrs["failures"])
                ]
                if not set(ids) <= wanted:
                    raise ValueError("holds videos not in the list")
        except Exception as error:
            warnings.warn(f"discarding {chunk} from an interrupted run ({error})", stacklevel=2)
            chunk.unlink()
            continue
        chunks.append(chunk)
        done.update(ids)
    return chunks, done


def _next_chunk_number(partial: Path) -> int:
    numbers = [int(c.stem.split("-")[1]) for c in partial.glob("chunk-*.h5")]
    return max(numbers, default=-1) + 1


def _adopt_previous_output(out: Path, failures: Path, partial: Path, attrs: dict) -> None:
    """Move a finished ``out`` made with the same settings into ``partial`` as a chunk.

    So a rerun (e.g. after the video list grew) skips the videos it already holds; its
    failures CSV travels with it. Other files are left alone (and replaced at the end).
    """
    try:
        with h5py.File(out, "r") as handle:
            usable = bool(handle.attrs.get("complete")) and _same_attrs(dict(handle.attrs), attrs)
    except OSError:
        return
    if not usable:
        return
    chunk = partial / f"chunk-{_next_chunk_number(partial):06d}.h5"
    os.replace(out, chunk)
    failed = []
    if failures.is_file():
        failed = pd.read_csv(failures, dtype=str).fillna("")[FAILURE_COLUMNS].values.tolist()
    with h5py.File(chunk, "a") as handle:
        handle.attrs["failures"] = json.dumps(failed)


def _write_chunk(partial: Path, number: int, attrs: dict, buffered: list, failed: list) -> Path:
    """Write buffered videos and failures as one chunk file (temp + rename: all or nothing)."""
    path = partial / f"chunk-{number:06d}.h5"
    tmp = path.with_name(path.name + ".tmp")
    ensure_free_space(tmp, sum(item[1].nbytes for item in buffered) + HDF5_MARGIN)
    with removed_on_error(tmp), create_feature_file(tmp, attrs) as handle:
        for video_id, features, label, n_frames in buffered:
            handle.attrs["feature_dim"] = features.shape[1]
            write_video_features(handle, video_id, features, label, n_frames)
        handle.attrs["failures"] = json.dumps(failed)
        handle.attrs["complete"] = True
    os.replace(tmp, path)
    return path


def merge_feature_files(
    parts: list[str | Path], out: str | Path, failures: str | Path | None = None
) -> dict:
    """Join feature files (shards, or chunks of one run) into ``out``; failures into a CSV.

    Parts must share their settings (backbone, weights hash, T, preprocessing, dtype) and hold
    disjoint videos. Failures come from each part's ``failures`` attribute or, for shard
    files, from the ``.failures.csv`` beside them. Written to temp files, then renamed.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    ensure_free_space(tmp, sum(Path(p).stat().st_size for p in parts) + HDF5_MARGIN)
    failed: list = []
    attrs: dict | None = None
    n_videos = 0
    with removed_on_error(tmp), h5py.File(tmp, "w") as dest:
        videos = dest.require_group(VIDEOS)
        for part in parts:
            part = Path(part)
            with h5py.File(part, "r") as source:
                part_attrs = {
                    k: v
                    for k, v in source.attrs.items()
                    if k not in ("failures", "shard", "complete", "feature_dim")
                }
                if attrs is None:
                    attrs = part_attrs
                    for key, value in attrs.items():
                        dest.attrs[key] = value
                elif not _same_attrs(part_attrs, attrs):
                    raise MoveError(
                        f"feature file {part} was made with other settings than {parts[0]}: "
                        "re-extract it with the same config"
                    )
                if "feature_dim" in source.attrs:
                    dest.attrs["feature_dim"] = source.attrs["feature_dim"]
                for video_id in source[VIDEOS]:
                    if video_id in videos:
                        raise MoveError(
                            f"video {video_id} is in two parts ({part}): shards overlap"
                        )
                    source.copy(source[VIDEOS][video_id], videos, name=video_id)
                    n_videos += 1
                part_failures = source.attrs.get("failures")
            csv = part.with_name(part.name.removesuffix(".h5") + ".failures.csv")
            if part_failures is not None:
                failed.extend(json.loads(part_failures))
            elif csv.is_file():
                failed.extend(pd.read_csv(csv, dtype=str).fillna("").values.tolist())
        dest.attrs["complete"] = True
    if failures is not None:
        failures = Path(failures)
        failures_tmp = failures.with_name(failures.name + ".tmp")
        table = pd.DataFrame([list(map(str, row)) for row in failed], columns=FAILURE_COLUMNS)
        table.sort_values("video_id").to_csv(failures_tmp, index=False)
        os.replace(failures_tmp, failures)
    os.replace(tmp, out)
    return {"extracted": n_videos, "failed": len(failed)}


def extract_features(
    videos: pd.DataFrame,
    out: str | Path,
    failures: str | Path,
    settings: ExtractSettings,
    progress: bool = True,
    chunk_videos: int = 64,
) -> dict:
    """Extract features of ``videos`` into ``out`` (HDF5) and log failures to ``failures`` (CSV).

    Resumable and crash-safe: every ``chunk_videos`` finished videos are written as one chunk
    file under ``<out>.partial/`` (temp + rename), so a killed run loses at most the chunk in
    flight; a rerun skips the videos in finished chunks. At the end the chunks are merged
    into ``out`` (temp + rename) and the partial folder is removed. Memory holds one chunk.
    A finished ``out`` with the same settings is reused the same way (its videos skipped).
    Returns counts of extracted and failed videos.
    """
    out, failures = Path(out), Path(failures)
    out.parent.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    model = create_backbone(settings.backbone, settings.weights).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    weights_sha = "none" if settings.weights.lower() == "none" else file_sha256(settings.weights)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    attrs = _run_attrs(settings, weights_sha, mean, std)
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(exist_ok=True)
    for stale in partial.glob("*.tmp"):
        stale.unlink()
    if out.is_file():
        _adopt_previous_output(out, failures, partial, attrs)
    chunks, done = _load_chunks(partial, attrs, set(videos.video_id))
    todo = videos[~videos.video_id.isin(done)]
    loader = DataLoader(
        DecodedVideos(todo, settings, mean, std),
        batch_size=None,
        shuffle=False,
        num_workers=settings.num_workers,
    )
    buffered: list = []
    failed: list = []

    def flush() -> None:
        if buffered or failed:
            number = _next_chunk_number(partial)
            chunks.append(_write_chunk(partial, number, attrs, buffered, failed))
            buffered.clear()
            failed.clear()

    for item in tqdm(
        loader,
        total=len(videos),
        initial=len(videos) - len(todo),
        desc=f"extract {settings.backbone}",
        unit="video",
        disable=not progress,
    ):
        if item["error"] is not None:
            failed.append([item["video_id"], item["path"], item["error"]])
        else:
            features = embed_frames(model, item["frames"], settings.batch_size, device)
            buffered.append(
                (item["video_id"], features.astype(settings.dtype), item["label"], item["n_frames"])
            )
        if len(buffered) + len(failed) >= chunk_videos:
            flush()
    flush()
    if not chunks:  # no videos at all: still a valid, empty file
        chunks.append(_write_chunk(partial, 0, attrs, [], []))
    counts = merge_feature_files(chunks, out, failures)
    shutil.rmtree(partial)
    return counts
