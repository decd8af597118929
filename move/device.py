"""Choosing the compute device once, for extraction and training alike, and sharing a
workstation's GPUs between the jobs Snakemake runs at once.

With several GPUs visible, each ``auto``/``cuda`` job claims a free slot (``claim_gpu``): a POSIX
lock file per (GPU, slot) under ``MOVE_GPU_LOCK_DIR``, ``MOVE_RUNS_PER_GPU`` slots per GPU
(default 1). The lock lives as long as the process, so a finished or killed job frees its GPU.
Torch is imported when a device is resolved.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from move.errors import MoveError
from move.files import try_lock

RUNS_PER_GPU_ENV = "MOVE_RUNS_PER_GPU"
LOCK_DIR_ENV = "MOVE_GPU_LOCK_DIR"
if TYPE_CHECKING:
    import torch

_claimed: dict[str, object] = {}  # this process's slot: its GPU and the lock file, held to exit


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an explicit CUDA device must exist. With more
    than one GPU, ``auto`` and ``cuda`` take the GPU of a free slot (``claim_gpu``)."""
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MoveError(f"device '{name}' requested but CUDA is not available: use 'auto' or 'cpu'")
    if name in ("auto", "cuda"):
        if not torch.cuda.is_available():
            return torch.device("cpu")
        count = torch.cuda.device_count()
        return torch.device(f"cuda:{claim_gpu(list(range(count)))}" if count > 1 else "cuda")
    return torch.device(name)


def runs_per_gpu() -> int:
    """``MOVE_RUNS_PER_GPU``: how many jobs may share one GPU (default 1)."""
    text = os.environ.get(RUNS_PER_GPU_ENV, "1")
    if not text.isdigit() or int(text) < 1:
        raise MoveError(f"environment variable {RUNS_PER_GPU_ENV}: {text!r} is not a count >= 1")
    return int(text)


def gpu_lock_dir() -> Path:
    """Where the GPU slot locks live: ``MOVE_GPU_LOCK_DIR``, else a per-user folder in /tmp."""
    default = Path(tempfile.gettempdir()) / f"move-gpu-slots-{os.getuid()}"
    return Path(os.environ.get(LOCK_DIR_ENV) or default)


def claim_gpu(devices: list[int], per_gpu: int | None = None, lock_dir: Path | None = None) -> int:
    """The GPU of the first free slot (slot 0 of every device, then slot 1, ...), held by this
    process until it exits; a process claims once. Every slot busy -> one line saying so."""
    if "gpu" in _claimed:
        return int(_claimed["gpu"])
    per_gpu = runs_per_gpu() if per_gpu is None else per_gpu
    lock_dir = gpu_lock_dir() if lock_dir is None else lock_dir
    for slot in range(per_gpu):
        for device in devices:
            handle = try_lock(lock_dir / f"gpu{device}.slot{slot}.lock")
            if not isinstance(handle, str):
                _claimed.update(gpu=device, lock=handle)
                return device
    raise MoveError(
        f"every GPU slot is taken ({len(devices)} GPUs x {per_gpu} run(s) each, locks in "
        f"{lock_dir}): run at most that many GPU jobs at once (--resources gpu=N), or raise "
        f"{RUNS_PER_GPU_ENV}"
    )
