"""The backbone over decoded frames: full forward passes of a fixed size shared by consecutive
videos (a frame's features never depend on its neighbours), features back on the CPU."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from move.errors import MoveError
from move.extraction.preprocess import normalise_frames


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
