"""Stage 1, decoding: read videos with decord and sample frames uniformly over segments.

Reads video files (any container/codec ffmpeg knows); writes nothing. Also locates videos on disk
in the Kinetics layouts (``<split>/<label>/<id>.mp4``, ``<label>/<id>.mp4`` or flat folders).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


class VideoDecodeError(Exception):
    """A video that cannot be opened or decoded; the message is the reason logged for it."""


def uniform_segment_indices(n_frames: int, n_segments: int) -> np.ndarray:
    """Index of the middle frame of each of ``n_segments`` equal segments of a video.

    Deterministic (TSN/TSM test-time sampling). A video with fewer frames than segments repeats
    frames in temporal order: each segment takes the frame under its midpoint, so neighbouring
    segments share a frame (e.g. 3 frames, 6 segments -> 0 0 1 1 2 2).
    """
    if n_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {n_frames}")
    if n_segments <= 0:
        raise ValueError(f"n_segments must be positive, got {n_segments}")
    midpoints = (np.arange(n_segments) + 0.5) * n_frames / n_segments
    return np.minimum(midpoints.astype(np.int64), n_frames - 1)


def read_frames(path: str | Path, n_segments: int) -> tuple[np.ndarray, int]:
    """Decode ``n_segments`` uniformly sampled RGB frames: (uint8 array [T, H, W, 3], frame count).

    Raises VideoDecodeError with a one-line reason for missing, empty, corrupt or
    stream-less files.
    """
    import decord

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError("file missing")
    if path.stat().st_size == 0:
        raise VideoDecodeError("empty file (0 bytes)")
    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        n_frames = len(reader)
        if n_frames == 0:
            raise VideoDecodeError("no decodable frames")
        indices = uniform_segment_indices(n_frames, n_segments)
        frames = reader.get_batch(indices.tolist()).asnumpy()
    except VideoDecodeError:
        raise
    except Exception as error:  # decord raises bare DECORDError/RuntimeError on bad input
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "cannot find video stream" in reason:
            raise VideoDecodeError("no video stream (audio-only or unknown container)") from None
        raise VideoDecodeError(f"cannot decode: {reason[:200]}") from None
    if frames.ndim != 4 or frames.shape[0] != n_segments:
        raise VideoDecodeError(f"decoded frames have unexpected shape {frames.shape}")
    return frames, n_frames


def index_video_files(root: str | Path) -> dict[str, Path]:
    """Map each video's id (its file stem) to its path, for every video file under ``root``.

    Works for the common Kinetics layouts since only the stem names a video. A stem found twice
    keeps the first path in sorted order, so the mapping is deterministic.
    """
    root = Path(root)
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            found.setdefault(path.stem, path)
    return found


def kinetics_video_id(youtube_id: str, time_start: float, time_end: float) -> str:
    """The Kinetics file stem ``<youtube_id>_<start:06d>_<end:06d>`` used by the authors' lists."""
    return f"{youtube_id}_{int(time_start):06d}_{int(time_end):06d}"
