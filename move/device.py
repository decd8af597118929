"""Choosing the compute device once, for extraction and training alike."""

from __future__ import annotations

import torch

from move.errors import MoveError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MoveError(f"device '{name}' requested but CUDA is not available: use 'auto' or 'cpu'")
    return torch.device(name)
