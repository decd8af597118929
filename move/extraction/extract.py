"""Stage 2, extraction: decode videos and write per-frame backbone features to HDF5.

Reads the videos listed in an annotations CSV (Kinetics columns) under a video root; writes
``features/<dataset>/<backbone>.h5`` (layout in ``move.features``) and
``<backbone>.failures.csv`` listing every video that could not be decoded, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import warnings
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from move.annotations import read_annotations
from move.device import resolve_device
from move.errors import MoveError, ensure_free_space, removed_on_error
from move.extraction.backbones import create_backbone, get_backbone, verified_weights
from move.extraction.settings import ExtractSettings
from move.extraction.throughput import (
    decode_on_device,
    encoded_jpeg_frames,
    measure_backbone_rate,
    measure_decode_rate,
    workers_for,
)
from move.extraction.video import VideoDecodeError, read_frames
from move.extraction.video_files import find_video_files
from move.features import (
    VIDEOS,
    create_feature_file,
    open_feature_file,
    write_video_features,
)
from move.files import atomic_output, holding_lock, read_csv_input

HDF5_MARGIN = 1 << 20  # bytes of room for HDF5 metadata beyond the features


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


def resized_size(height: int, width: int, resize: int, crop: int) -> tuple[int, int]:
    """Frame size after scaling the shorter side to ``resize`` (never below ``crop``)."""
    scale = resize / min(height, width)
    return max(crop, round(height * scale)), max(crop, round(width * scale))


def resize_and_crop(frames: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, 3, crop, crop]``: shorter side to ``resize``, centre crop.

    Bilinear with antialiasing, as ``preprocess_frames`` always did, but on uint8 (torch's
    vectorised channels-last kernel, rounded to the nearest level, within one level of the
    float32 path): ~20x cheaper per core than float32 (``benchmarks/extract.py``) and 4x smaller
    to hold and to copy to the device. A frame already at the size is only cropped (bilinear
    resizing to the same size is the identity).
    """
    video = frames.permute(0, 3, 1, 2)  # channels-last memory, NCHW shape
    size = resized_size(*video.shape[-2:], resize, crop)
    if size != tuple(video.shape[-2:]):
        video = F.interpolate(
            video, size=size, mode="bilinear", antialias=True, align_corners=False
        )
    top, left = (size[0] - crop) // 2, (size[1] - crop) // 2
    return video[:, :, top : top + crop, left : left + crop].contiguous()


def crop_transform(settings: ExtractSettings):
    """``resize_and_crop`` at the settings' sizes, as a one-argument transform."""
    return lambda frames: resize_and_crop(frames, settings.resize, settings.crop)


def normalise_frames(frames: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` -> float32 ``(x / 255 - mean) / std``, on the frames' device.

    Computed in place as ``x * (1 / (255 std)) - mean / std`` (within 1e-6 of the quotient).
    """
    std_t = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    scale = (1 / (255 * std_t)).float().to(frames.device)
    shift = (-torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1) / std_t).float()
    return frames.float().mul_(scale).add_(shift.to(frames.device))


def preprocess_frames(
    frames: np.ndarray, resize: int, crop: int, mean: tuple, std: tuple
) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> normalised float ``[T, 3, crop, crop]``.

    Shorter side resized to ``resize`` (bilinear, antialiased), then a centre crop, then
    ImageNet mean/std: the test-time preprocessing the ResNet/TSM backbones were trained with.
    Extraction runs the two halves apart: ``resize_and_crop`` in the decode workers,
    ``normalise_frames`` on the device.
    """
    cropped = resize_and_crop(torch.from_numpy(np.ascontiguousarray(frames)), resize, crop)
    return normalise_frames(cropped, mean, std)


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


def clip_batch_size(model: torch.nn.Module, batch_size: int) -> int:
    """Frames per forward pass: for TSM and clip models a multiple of ``n_segment`` (the frames
    one pass takes together), so clips never straddle batches."""
    n_segment = getattr(model, "n_segment", 1)
    return max(n_segment, batch_size // n_segment * n_segment)


def forward_frames(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Backbone features of normalised frames already on the model's device -> float32 on CPU."""
    if batch.device.type == "cuda":
        batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model.forward_features(batch).float().cpu()
    return model.forward_features(batch).float()


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
    """Run the backbone over normalised ``[T, 3, H, W]`` frames in batches -> float32 ``[T, D]``.

    For TSM the batch is a multiple of its ``n_segment`` so clips never straddle batches; a clip
    model (``per_clip``) gives one row per clip.
    """
    size = clip_batch_size(model, batch_size)
    outputs = [
        forward_frames(model, frames[start : start + size].to(device, non_blocking=True))
        for start in range(0, len(frames), size)
    ]
    step = getattr(model, "n_segment", 1) if getattr(model, "per_clip", False) else 1
    return torch.cat(outputs)[::step].numpy()


@torch.inference_mode()
def embed_videos(
    model: torch.nn.Module,
    items: Iterable[dict],
    batch_size: int,
    device: torch.device,
    mean: tuple,
    std: tuple,
) -> Iterator[tuple[dict, np.ndarray | None]]:
    """``(item, float32 [T, D] features)`` per decoded video, in order (``None`` for a failure).

    Frames of consecutive videos share forward passes of ``batch_size`` frames, so the backbone
    always runs full batches; each video's uint8 frames go to the device as they arrive
    (non-blocking from pinned memory) and are normalised there. Every pass has exactly that
    many frames (the last one is padded by repeating a frame), so a frame's features do not
    depend on which videos share its batch: a resumed or sharded run writes the same bits.
    For TSM and clip models each video is padded to whole clips by repeating its last frame
    (what ``TSMBackbone`` does) and the padding's outputs are dropped; a clip model
    (``per_clip``) gives one row per clip: ``[ceil(T / clip), D]``.
    """
    n_segment = getattr(model, "n_segment", 1)
    size = clip_batch_size(model, batch_size)
    waiting: deque[list] = deque()  # [item, frames not yet embedded, outputs, frame count]
    queued = 0
    for item in items:
        frames = item["frames"]
        if frames is None:
            waiting.append([item, None, [], 0])
        else:
            frames = frames.to(device, non_blocking=True)
            pad = -len(frames) % n_segment
            padded = (
                torch.cat([frames, frames[-1:].expand(pad, *frames.shape[1:])]) if pad else frames
            )
            waiting.append([item, padded, [], len(frames)])
            queued += len(padded)
        while queued >= size:
            queued -= _embed_waiting(model, waiting, size, mean, std)
        yield from _finished(waiting, model)
    while queued:
        queued -= _embed_waiting(model, waiting, size, mean, std)
    yield from _finished(waiting, model)


def _embed_waiting(
    model: torch.nn.Module, waiting: deque, size: int, mean: tuple, std: tuple
) -> int:
    """Embed up to ``size`` of the oldest waiting frames in one forward pass; returns how many."""
    pieces, owners = [], []
    for entry in waiting:
        if entry[1] is None or len(entry[1]) == 0:
            continue
        take = entry[1][: size - sum(len(p) for p in pieces)]
        entry[1] = entry[1][len(take) :]
        pieces.append(take)
        owners.append(entry)
        if sum(len(p) for p in pieces) == size:
            break
    frames = torch.cat(pieces)
    taken = len(frames)
    if taken < size:  # every pass has the same shape: a frame's features never depend on it
        frames = torch.cat([frames, frames[-1:].expand(size - taken, *frames.shape[1:])])
    features = forward_frames(model, normalise_frames(frames, mean, std))[:taken]
    for entry, part in zip(owners, features.split([len(p) for p in pieces]), strict=True):
        entry[2].append(part)
    return taken


def _finished(waiting: deque, model: torch.nn.Module) -> Iterator[tuple[dict, np.ndarray | None]]:
    """Pop and yield the leading videos all of whose frames are embedded (a clip model's: one
    row per clip, its first frame's, which every frame of the clip repeats)."""
    step = getattr(model, "n_segment", 1) if getattr(model, "per_clip", False) else 1
    while waiting and (waiting[0][1] is None or len(waiting[0][1]) == 0):
        item, _, outputs, n = waiting.popleft()
        yield item, (None if item["frames"] is None else torch.cat(outputs)[:n:step].numpy())


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
NOT_SETTINGS = ("failures", "shard", "complete", "feature_dim")  # file attributes, not settings


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


@dataclass
class FinishedWork:
    """The listed videos and failures earlier runs finished, each with the file holding it.

    Sources are finished feature files made with the same settings (the previous output, files
    given to reuse, chunks of an interrupted run). They are only read, never moved or changed,
    so a finished file stays where it is, readable, until its replacement is complete.
    """

    wanted: set[str]
    videos: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, list] = field(default_factory=dict)
    sizes: dict[Path, int] = field(default_factory=dict)

    def add(self, source: Path, ids: list[str], failed_rows: list) -> None:
        """Record the listed videos of ``source`` (first source wins) and its failure rows."""
        self.sizes[source] = len(ids)
        for video_id in ids:
            if video_id in self.wanted:
                self.videos.setdefault(video_id, source)
        for row in failed_rows:
            if row[0] in self.wanted:
                self.failed.setdefault(str(row[0]), [str(value) for value in row])

    def done(self) -> set[str]:
        """Ids needing no work: extracted, or failed in an earlier run."""
        return set(self.videos) | set(self.failed)

    def failure_rows(self) -> list[list[str]]:
        """Failure rows of the listed videos that have no features."""
        return [row for video_id, row in self.failed.items() if video_id not in self.videos]


def _finished_ids(path: Path, attrs: dict) -> list[str] | None:
    """Video ids of ``path`` if it is a finished file made with ``attrs``, else None.

    Opened read-only, so another process may hold it open (a notebook, a training run).
    """
    try:
        with h5py.File(path, "r") as handle:
            usable = bool(handle.attrs.get("complete")) and VIDEOS in handle
            if usable and _same_attrs(dict(handle.attrs), attrs):
                return list(handle[VIDEOS].keys())
    except OSError:
        pass
    return None


def _failure_rows(csv: Path) -> list[list[str]]:
    """Rows of the failures CSV beside a finished file; none when absent or unreadable."""
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        return table[FAILURE_COLUMNS].values.tolist()
    except (OSError, ValueError, KeyError):
        return []


def _load_chunks(partial: Path, attrs: dict, work: FinishedWork) -> None:
    """Add the finished chunks of an interrupted run to ``work``.

    A chunk that is unreadable, not marked complete or made with other settings is discarded
    with a warning. One holding videos no longer listed is kept: its listed videos are used.
    """
    for chunk in sorted(partial.glob("chunk-*.h5")):
        try:
            with h5py.File(chunk, "r") as handle:
                if not bool(handle.attrs.get("complete")):
                    raise ValueError("not marked complete")
                if not _same_attrs(dict(handle.attrs), attrs):
                    raise ValueError("made with other settings")
                ids = list(handle[VIDEOS].keys())
                failed = json.loads(handle.attrs.get("failures", "[]"))
        except Exception as error:
            warnings.warn(f"discarding {chunk} from an interrupted run ({error})", stacklevel=2)
            chunk.unlink()
            continue
        work.add(chunk, ids, failed)


def collect_finished_work(
    videos: pd.DataFrame,
    out: Path,
    failures: Path,
    reuse: Sequence[str | Path],
    partial: Path,
    attrs: dict,
) -> FinishedWork:
    """What earlier runs finished of ``videos``: ``out`` (with ``failures``), ``reuse`` files
    (each with its ``.failures.csv``) and the chunks in ``partial``, all with these settings.

    Files made with other settings, unfinished or unreadable are not sources (``out`` is then
    simply replaced at the end).
    """
    work = FinishedWork(set(videos.video_id))
    files = [(out, failures)]
    files += [(Path(r), Path(r).with_suffix(".failures.csv")) for r in reuse]
    for path, csv in files:
        if path not in work.sizes and path.is_file():
            ids = _finished_ids(path, attrs)
            if ids is not None:
                work.add(path, ids, _failure_rows(csv))
    _load_chunks(partial, attrs, work)
    return work


def _next_chunk_number(partial: Path) -> int:
    numbers = [int(c.stem.split("-")[1]) for c in partial.glob("chunk-*.h5")]
    return max(numbers, default=-1) + 1


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


def _write_features(plan: dict[str, Path], attrs: dict, out: Path) -> None:
    """Copy each video of ``plan`` (id -> finished source file) into ``out``: temp, then rename.

    Sources are opened read-only and ``out`` may be one of them: it is replaced only once the
    new file is complete.
    """
    by_source: dict[Path, list[str]] = {}
    for video_id, source in plan.items():
        by_source.setdefault(source, []).append(video_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    ensure_free_space(tmp, sum(p.stat().st_size for p in by_source) + HDF5_MARGIN)
    with removed_on_error(tmp), create_feature_file(tmp, attrs) as dest:
        for source_path, ids in by_source.items():
            with h5py.File(source_path, "r") as source:
                if "feature_dim" in source.attrs:
                    dest.attrs["feature_dim"] = source.attrs["feature_dim"]
                for video_id in ids:
                    source.copy(source[VIDEOS][video_id], dest[VIDEOS], name=video_id)
        dest.attrs["complete"] = True
    os.replace(tmp, out)


def _write_failures(rows: list, path: Path) -> None:
    """The failures CSV (``video_id, path, reason``, sorted by id), written atomically."""
    table = pd.DataFrame([list(map(str, row)) for row in rows], columns=FAILURE_COLUMNS)
    with atomic_output(path) as tmp:
        table.sort_values("video_id").to_csv(tmp, index=False)


def finish_extraction(work: FinishedWork, out: Path, failures: Path, attrs: dict) -> None:
    """Write ``failures`` and ``out`` with exactly the listed videos and failures of ``work``.

    ``out`` is left as it is when it already holds exactly the listed videos.
    """
    _write_failures(work.failure_rows(), failures)
    unchanged = set(work.videos.values()) <= {out} and work.sizes.get(out) == len(work.videos)
    if not (unchanged and out.is_file()):
        _write_features(work.videos, attrs, out)


def merge_feature_files(
    parts: list[str | Path], out: str | Path, failures: str | Path | None = None
) -> dict:
    """Join finished feature files (shards) into ``out``; their failures into a CSV.

    Parts must be finished (``complete``: an interrupted part is refused, never merged), share
    their settings (backbone, weights hash, T, preprocessing, dtype) and hold disjoint videos.
    Failures come from each part's ``failures`` attribute or from the ``.failures.csv`` beside
    it. Written to temp files, then renamed.
    """
    if not parts:
        raise MoveError("no feature files to merge: give the shard files")
    plan: dict[str, Path] = {}
    failed: list = []
    attrs: dict | None = None
    for part in map(Path, parts):
        with open_feature_file(part) as source:
            part_attrs = {k: v for k, v in source.attrs.items() if k not in NOT_SETTINGS}
            if attrs is None:
                attrs = part_attrs
            elif not _same_attrs(part_attrs, attrs):
                raise MoveError(
                    f"feature file {part} was made with other settings than {parts[0]}: "
                    "re-extract it with the same config"
                )
            for video_id in source[VIDEOS]:
                if video_id in plan:
                    raise MoveError(f"video {video_id} is in two parts ({part}): shards overlap")
                plan[video_id] = part
            part_failures = source.attrs.get("failures")
        if part_failures is not None:
            failed.extend(json.loads(part_failures))
        else:
            failed.extend(_part_failures_csv(part))
    if failures is not None:
        _write_failures(failed, Path(failures))
    _write_features(plan, attrs, Path(out))
    return {"extracted": len(plan), "failed": len(failed)}


def _part_failures_csv(part: Path) -> list[list[str]]:
    """Failure rows of the ``.failures.csv`` beside a shard file (none when absent)."""
    csv = part.with_name(part.name.removesuffix(".h5") + ".failures.csv")
    if not csv.is_file():
        return []
    fix = f"delete it and re-extract {part}"
    table = read_csv_input(csv, "failures file", fix, dtype=str, keep_default_na=False)
    missing = [c for c in FAILURE_COLUMNS if c not in table.columns]
    if missing:
        raise MoveError(f"failures file {csv} lacks column(s) {', '.join(missing)}: {fix}")
    return table[FAILURE_COLUMNS].values.tolist()


@holding_lock("out", "extraction")
def extract_features(
    videos: pd.DataFrame,
    out: str | Path,
    failures: str | Path,
    settings: ExtractSettings,
    progress: bool = True,
    chunk_videos: int = 64,
    reuse: Sequence[str | Path] = (),
) -> dict:
    """Extract features of ``videos`` into ``out`` (HDF5) and log failures to ``failures`` (CSV).

    Resumable and crash-safe: every ``chunk_videos`` finished videos are written as one chunk
    file under ``<out>.partial/`` (temp + rename), so a killed run loses at most the chunk in
    flight; a rerun skips the videos in finished chunks. Videos (and failures) already in a
    finished ``out`` or a ``reuse`` file made with the same settings are taken from there,
    read-only. At the end the new ``out`` is written beside the old one and renamed over it,
    so a finished ``out`` stays readable until its replacement is complete; the partial folder
    is then removed. Memory holds one chunk. Returns counts: videos in ``out`` (``extracted``),
    ``failed``, and ``new`` (extracted by this run). Holds ``<out>.lock`` while it runs: a second
    extraction into the same ``out`` is refused, naming this one.
    """
    out, failures = Path(out), Path(failures)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = settings.for_backbone()  # resize and crop unset: the backbone's input size
    entry = get_backbone(settings.backbone)
    device = resolve_device(settings.device)
    weights = verified_weights(settings.backbone, settings.weights)  # named: downloaded once
    model = create_backbone(settings.backbone, weights).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    weights_sha = weights.sha256
    mean, std = entry.mean, entry.std  # the backbone's normalisation (timm's pretrained_cfg)
    attrs = _run_attrs(settings, weights_sha, mean, std)
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(exist_ok=True)
    for stale in partial.glob("*.tmp"):
        stale.unlink()
    work = collect_finished_work(videos, out, failures, reuse, partial, attrs)
    todo = videos[~videos.video_id.isin(work.done())]
    jpeg_on_device = device.type == "cuda"  # JPEG frame folders decoded on the GPU
    loading = sized_workers(todo, settings, model, device, jpeg_on_device, log=progress)
    items = decode_loader(todo, loading, device, jpeg_on_device)
    if jpeg_on_device:
        items = decode_on_device(items, device, crop_transform(settings))
    embedded = embed_videos(model, items, settings.batch_size, device, mean, std)
    buffered: list = []
    failed: list = []
    new = 0

    def flush() -> None:
        nonlocal new
        if buffered or failed:
            number = _next_chunk_number(partial)
            chunk = _write_chunk(partial, number, attrs, buffered, failed)
            work.add(chunk, [item[0] for item in buffered], list(failed))
            new += len(buffered)
            buffered.clear()
            failed.clear()

    for item, features in tqdm(
        embedded,
        total=len(videos),
        initial=len(videos) - len(todo),
        desc=f"extract {settings.backbone}",
        unit="video",
        disable=not progress,
    ):
        if item["error"] is not None:
            failed.append([item["video_id"], item["path"], item["error"]])
        else:
            buffered.append(
                (item["video_id"], features.astype(settings.dtype), item["label"], item["n_frames"])
            )
        if len(buffered) + len(failed) >= chunk_videos:
            flush()
    flush()
    finish_extraction(work, out, failures, attrs)
    shutil.rmtree(partial)
    return {"extracted": len(work.videos), "failed": len(work.failure_rows()), "new": new}
