"""Where videos are on disk: the Kinetics file stem of a video, and a folder's videos by stem.

Plain paths, no decoder and no torch (the demo writer and planning use these).
"""

from __future__ import annotations

from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


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
