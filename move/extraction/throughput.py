"""Extraction that keeps the device busy: JPEG frames of frame folders decoded on the device, and
decode workers sized from the measured decode rate and the backbone's. Reads frame files and
videos; writes nothing (the sizing's figures go to the log, stderr).

On a CUDA device a decode worker of a JPEG frame folder only reads the chosen frames' bytes
(``encoded_jpeg_frames``); the main process decodes each video's JPEGs in one batched
``torchvision.io.decode_jpeg`` call on the device (nvJPEG) and resizes and crops them there
(``decode_on_device``). A video whose JPEGs the device decoder refuses (a CMYK or otherwise
unsupported file) is decoded on the CPU instead; one no decoder reads is a failure, as on the CPU
path. The same code runs with the CPU as the "device" (what the tests exercise): then it gives
the CPU path's frames bit for bit.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from move.extraction.video import VideoDecodeError, uniform_segment_indices
from move.extraction.video_files import frame_files

JPEG_SUFFIXES = (".jpg", ".jpeg")
DEVICE_DECODE_CHUNK = 64  # JPEGs per decode_jpeg call on the device (a 340x256 frame: 0.26 MB)


def encoded_jpeg_frames(path: str | Path, n_segments: int) -> dict | None:
    """The encoded bytes of a JPEG frame folder's ``n_segments`` uniformly chosen frames (the
    same choice as ``read_frames``): ``jpegs`` (uint8 tensors, distinct frames in order),
    ``positions`` (frame of each segment) and ``n_frames``. None where ``path`` is not a frame
    folder of JPEGs (a video file, PNG frames): those are decoded as before."""
    path = Path(path)
    if not path.is_dir():
        return None
    files = frame_files(path)
    if not files or any(f.suffix.lower() not in JPEG_SUFFIXES for f in files):
        return None
    indices = uniform_segment_indices(len(files), n_segments)
    distinct, positions = np.unique(indices, return_inverse=True)
    try:
        jpegs = [
            torch.frombuffer(bytearray(files[i].read_bytes()), dtype=torch.uint8) for i in distinct
        ]
    except OSError as error:
        raise VideoDecodeError(f"could not read frame images in {path.name} ({error})") from None
    return {"jpegs": jpegs, "positions": torch.from_numpy(positions), "n_frames": len(files)}


def _decode_jpegs(jpegs: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """uint8 ``[3, H, W]`` RGB images, decoded on ``device`` (torchvision; its deprecation
    warning in favour of TorchCodec silenced, as ``move.extraction.video`` does)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg

        return decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)


Transform = Callable[[torch.Tensor], torch.Tensor]  # uint8 [k, H, W, 3] -> [k, 3, crop, crop]


def decode_video_jpegs(
    encoded: dict, folder: str, device: torch.device, transform: Transform
) -> tuple[torch.Tensor, bool]:
    """(``transform`` of the frames (resize and crop), on ``device``; whether the CPU decoded
    them): the device decodes the JPEGs ``DEVICE_DECODE_CHUNK`` at a time and transforms them
    there; where it refuses, the CPU decodes them (then the frames go to the device). Unreadable
    on both, or frames of two sizes -> ``VideoDecodeError`` naming the folder."""
    jpegs, on_cpu = encoded["jpegs"], False
    try:
        images = [
            image
            for start in range(0, len(jpegs), DEVICE_DECODE_CHUNK)
            for image in _decode_jpegs(jpegs[start : start + DEVICE_DECODE_CHUNK], device)
        ]
    except RuntimeError:
        on_cpu = True
        try:
            images = [image.to(device) for image in _decode_jpegs(jpegs, torch.device("cpu"))]
        except RuntimeError as error:
            reason = " ".join(str(error).split())[:120]
            raise VideoDecodeError(f"could not read frame images in {folder} ({reason})") from None
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) > 1:
        raise VideoDecodeError(f"frames of different sizes in {folder}: {sorted(shapes)}")
    frames = transform(torch.stack(images).permute(0, 2, 3, 1))
    if len(jpegs) < len(encoded["positions"]):  # a short video repeats frames
        frames = frames[encoded["positions"].to(frames.device)]
    return frames, on_cpu


@dataclass
class DeviceDecodeCount:
    """How many videos the device decoded, and how many fell back to the CPU decoder."""

    on_device: int = 0
    on_cpu: int = 0


def decode_on_device(
    items: Iterable[dict],
    device: torch.device,
    transform: Transform,
    count: DeviceDecodeCount | None = None,
) -> Iterator[dict]:
    """The decode loader's items with every ``encoded`` JPEG folder decoded on ``device`` and
    transformed there (``decode_video_jpegs``): ``frames``, or ``error`` for an unreadable
    folder; other items (videos, PNG folders, failures) pass unchanged. Order is kept."""
    count = count if count is not None else DeviceDecodeCount()
    for item in items:
        encoded = item.pop("encoded", None)
        if encoded is not None:
            folder = Path(item["path"]).name
            try:
                frames, on_cpu = decode_video_jpegs(encoded, folder, device, transform)
            except VideoDecodeError as error:
                item.update(frames=None, n_frames=0, error=str(error))
            else:
                item.update(frames=frames, n_frames=encoded["n_frames"], error=None)
                count.on_cpu += on_cpu
                count.on_device += not on_cpu
        yield item


@dataclass(frozen=True)
class WorkerSizing:
    """Measured rates and the decode workers they call for."""

    decode_frames_per_s: float | None  # one worker (None: no video could be measured)
    backbone_frames_per_s: float
    needed: int  # workers whose decoding matches the backbone
    workers: int  # what the run uses: needed, at most the allowed
    allowed: int

    def line(self, backbone: str, device: torch.device) -> str:
        """The log line: both rates, what would keep the backbone busy, what is used."""
        if self.decode_frames_per_s is None:
            return (
                f"extract: no video to measure decoding on; {backbone} on {device}: "
                f"{self.backbone_frames_per_s:.0f} frames/s; {self.workers} decode worker(s)"
            )
        text = (
            f"extract: decoding {self.decode_frames_per_s:.0f} frames/s per worker, {backbone} "
            f"on {device} {self.backbone_frames_per_s:.0f} frames/s: {self.needed} decode "
            f"worker(s) keep it busy; using {self.workers} of {self.allowed} allowed"
        )
        if self.needed > self.allowed:
            ceiling = self.allowed * self.decode_frames_per_s
            text += (
                f" (decode-bound at {ceiling:.0f} frames/s: give the job more CPU threads, "
                "or frame folders of JPEGs, decoded on the GPU)"
            )
        return text


def workers_for(decode_rate: float | None, backbone_rate: float, allowed: int) -> WorkerSizing:
    """Decode workers for the measured rates: enough that their decoding keeps up with the
    backbone (at least 1), at most ``allowed``; ``allowed`` where decoding was not measured."""
    if decode_rate is None or decode_rate <= 0:
        return WorkerSizing(decode_rate, backbone_rate, allowed, allowed, allowed)
    needed = max(1, math.ceil(backbone_rate / decode_rate))
    return WorkerSizing(decode_rate, backbone_rate, needed, min(needed, allowed), allowed)


def measure_decode_rate(dataset, tries: int = 3) -> float | None:
    """Frames/s one worker decodes: the first decodable of the first ``tries`` videos of
    ``dataset`` (a ``DecodedVideos``: exactly a worker's work), in this process; None if none
    decodes."""
    for index in range(min(tries, len(dataset))):
        started = time.perf_counter()
        item = dataset[index]
        seconds = time.perf_counter() - started
        decoded = item.get("frames") if item.get("encoded") is None else item["encoded"]["jpegs"]
        if item.get("error") is None and decoded is not None:
            return len(decoded) / max(seconds, 1e-9)
    return None


def measure_backbone_rate(
    forward: Callable[[], object], frames: int, device: torch.device
) -> float:
    """Frames/s of one backbone pass ``forward()`` over ``frames`` frames on ``device``, timed
    after a warm-up pass on CUDA (cuDNN picks its kernels then)."""

    def seconds() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        forward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    if device.type == "cuda":
        seconds()
    return frames / max(seconds(), 1e-9)
