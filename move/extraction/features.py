"""The HDF5 feature file: one per (dataset, backbone), written by extraction, read by training.

Layout (``FORMAT_VERSION`` 1):
- file attributes: ``backbone``, ``weights``, ``weights_sha256``, ``frames`` (T), ``resize``,
  ``crop``, ``mean``, ``std``, ``feature_dim``, ``dtype``, ``format_version``, ``complete``;
- group ``videos``: one dataset per video id, shape ``[T, feature_dim]``, with attributes
  ``label`` (class name; ``;``-joined names for multi-label) and ``n_frames`` (frames in the source).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from move.errors import MoveError

FORMAT_VERSION = 1
VIDEOS = "videos"


def create_feature_file(path: str | Path, attrs: dict) -> h5py.File:
    """Open a new feature file for writing with the given file attributes (``complete`` false)."""
    handle = h5py.File(path, "w")
    for key, value in attrs.items():
        handle.attrs[key] = value
    handle.attrs["format_version"] = FORMAT_VERSION
    handle.attrs["complete"] = False
    handle.require_group(VIDEOS)
    return handle


def write_video_features(
    handle: h5py.File, video_id: str, features: np.ndarray, label: str, n_frames: int
) -> None:
    """Store one video's ``[T, D]`` features and its attributes."""
    dataset = handle[VIDEOS].create_dataset(video_id, data=features)
    dataset.attrs["label"] = label
    dataset.attrs["n_frames"] = int(n_frames)


def open_feature_file(path: str | Path) -> h5py.File:
    """Open a finished feature file for reading; refuse missing, unreadable or unfinished files."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"feature file {path} not found: run the extract stage first")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise MoveError(
            f"feature file {path} is unreadable (truncated?): delete it and re-extract"
        ) from None
    if handle.attrs.get("format_version") != FORMAT_VERSION or VIDEOS not in handle:
        handle.close()
        raise MoveError(
            f"feature file {path} is not in move's HDF5 layout (version {FORMAT_VERSION})"
        )
    if not bool(handle.attrs.get("complete", False)):
        handle.close()
        raise MoveError(f"feature file {path} was never finished: delete it and re-extract")
    return handle


def read_video_features(handle: h5py.File, video_id: str) -> np.ndarray:
    """One video's features as float32 ``[T, D]``."""
    return np.asarray(handle[VIDEOS][video_id], dtype=np.float32)


def video_ids(handle: h5py.File) -> list[str]:
    """Ids of all videos in the file, sorted."""
    return sorted(handle[VIDEOS].keys())


def stored_backbone(path: str | Path) -> str | None:
    """The backbone a feature file was made with (its ``backbone`` attribute), if it says."""
    with open_feature_file(path) as handle:
        value = handle.attrs.get("backbone")
    return None if value is None else str(value)
