"""The HDF5 feature file: one per (dataset, backbone), written by extraction (and the VideoLT,
``.npy`` and synthetic sources), read by splitting, training and reporting: so on the ground
floor, below every stage.

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


def stored_weights(path: str | Path) -> str | None:
    """The weights a feature file was made with (its ``weights`` attribute: a name, URL, file or
    'none'), if it says."""
    with open_feature_file(path) as handle:
        value = handle.attrs.get("weights")
    return None if value is None else str(value)


def stored_backbone(path: str | Path) -> str | None:
    """The backbone a feature file was made with (its ``backbone`` attribute), if it says."""
    with open_feature_file(path) as handle:
        value = handle.attrs.get("backbone")
    return None if value is None else str(value)


DEAD_BACKBONE_SHARE = 0.5  # more than this share of constant videos: the backbone is dead


def check_stored_features(
    path: str | Path, labels: dict[str, str], fix: str = "re-extract it"
) -> list[str]:
    """Check the stored features of the videos ``labels`` names ({video id: class}), cheaply
    (its first, middle and last frame): return warning lines, or raise ``MoveError`` in one line naming the
    video, the file and the fix.

    Refused: a video stored other than 2-D ``[frames, feature_dim]``, of another width than the
    file's, with 0 frames, or not floating point; and a file where most videos are constant (all
    zero or all equal: a dead backbone, e.g. broken weights). Warned: constant videos (they
    carry nothing) and classes whose every video is constant.
    """
    path = Path(path)
    constant: list[str] = []
    with open_feature_file(path) as handle:
        videos = handle[VIDEOS]
        width = handle.attrs.get("feature_dim")
        for video_id in labels:
            if video_id not in videos:
                continue  # a missing video is the caller's to report
            dataset = videos[video_id]
            where = f"feature file {path}: video {video_id}"
            if len(dataset.shape) != 2:
                raise MoveError(
                    f"{where} is stored {len(dataset.shape)}-D {dataset.shape}, not [frames, width]: {fix}"
                )
            frames, size = dataset.shape
            width = int(width) if width is not None else size
            if size != width:
                raise MoveError(f"{where} is {size} wide, the file's features {width}: {fix}")
            if frames == 0:
                raise MoveError(f"{where} has 0 stored frames: {fix}")
            if dataset.dtype.kind != "f":
                raise MoveError(f"{where} is stored as {dataset.dtype}, not float16/float32: {fix}")
            sampled = np.stack([dataset[i] for i in sorted({0, frames // 2, frames - 1})])
            if sampled.min() == sampled.max():
                constant.append(video_id)
        checked = sum(video_id in videos for video_id in labels)
    return constant_warnings(path, constant, labels, checked, fix)


def constant_warnings(
    path: Path, constant: list[str], labels: dict[str, str], n_videos: int, fix: str
) -> list[str]:
    """The warnings (or the dead-backbone refusal) for the videos whose features are constant."""
    if not constant:
        return []
    examples = ", ".join(constant[:3]) + (" …" if len(constant) > 3 else "")
    if len(constant) > DEAD_BACKBONE_SHARE * n_videos:
        raise MoveError(
            f"feature file {path}: {len(constant)} of {n_videos} videos have constant features "
            f"(all zero or all equal, e.g. {examples}): a dead backbone (broken or random "
            f"weights?); {fix} with working weights"
        )
    per_class: dict[str, int] = {}
    for label in labels.values():
        per_class[label] = per_class.get(label, 0) + 1
    dead: dict[str, int] = {}
    for video_id in constant:
        dead[labels[video_id]] = dead.get(labels[video_id], 0) + 1
    lines = [
        f"feature file {path}: {len(constant)} video(s) have constant features (all zero or all "
        f"equal: they carry nothing), e.g. {examples}"
    ]
    lines += [
        f"feature file {path}: every video of class '{label}' ({count}) has constant features"
        for label, count in dead.items()
        if count == per_class[label]
    ]
    return lines
