"""Where videos are on disk: a folder's videos by stem (and by Kinetics video id),
as files or as frame folders (a folder of numbered JPEG/PNG frames per video).

Plain paths, no decoder and no torch (the demo writer and planning use these).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from move.annotations import KINETICS_ID
from move.errors import MoveError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
# A frame of a frame folder: img_00001.jpg (the authors', mmaction2's rawframes), 00001.jpg,
# frame_000001.jpg, ... .png; its number orders the frames.
FRAME_FILE = re.compile(r"^(?:img|frame|image)?[_-]?(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)


def frame_files(folder: str | Path, names: list[str] | None = None) -> list[Path]:
    """The frames of a frame folder in numeric order (``img_9`` before ``img_10``), whatever
    order the file system lists them in; other files are ignored."""
    folder = Path(folder)
    names = os.listdir(folder) if names is None else names
    numbered = [(int(m[1]), name) for name in names if (m := FRAME_FILE.match(name))]
    return [folder / name for _, name in sorted(numbered)]


def index_video_files(root: str | Path) -> dict[str, Path]:
    """Map each video's id to its path under ``root``: a video file (id = its stem) or a frame
    folder (a folder of numbered images, id = its name).

    Works for the common Kinetics layouts since only the stem names a video. An id found twice
    keeps the first path in sorted order, so the mapping is deterministic. A frame folder (numbered
    images and no video file) is not searched further (the authors' frames: 150 JPEGs a video,
    millions in all); a folder holding videos and numbered images is a folder of videos (one line
    on stderr says so).
    """
    found: dict[str, Path] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        here = Path(folder)
        images = [name for name in names if FRAME_FILE.match(name)]
        videos = [name for name in names if Path(name).suffix.lower() in VIDEO_EXTENSIONS]
        if here != Path(root) and images and not videos:
            found.setdefault(here.name, here)
            subfolders.clear()
            continue
        if images and videos:  # a class folder with a stray numbered image: not a frame folder
            print(
                f"warning: {here} holds {len(videos)} video file(s) and {len(images)} numbered "
                f"image(s) (e.g. {sorted(images)[0]}): read as a folder of videos, the images "
                "ignored (a frame folder holds images only)",
                file=sys.stderr,
            )
        for name in sorted(names):
            path = here / name
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                found.setdefault(path.stem, path)
    return dict(sorted(found.items(), key=lambda item: str(item[1])))


def find_video_files(video_ids: Iterable[str], root: str | Path) -> dict[str, Path]:
    """Video id -> file under ``root`` in any common Kinetics layout, for the ids that have one.

    Matches ``<split>/<label>/<id>.<ext>``, ``<label>/<id>.<ext>`` and flat folders by file stem,
    and falls back to files named by the bare YouTube id (``<youtube_id>.<ext>``). Extensions are
    those of ``VIDEO_EXTENSIONS``, any case. A stem found twice keeps the first path
    in sorted order.
    """
    root = Path(root)
    if not root.is_dir():
        raise MoveError(f"video folder {root} not found: check the dataset's 'videos' in config")
    stems = index_video_files(root)
    found = {}
    for video_id in video_ids:
        path = stems.get(video_id)
        if path is None:
            match = KINETICS_ID.match(video_id)
            path = stems.get(match["youtube_id"]) if match else None
        if path is not None:
            found[video_id] = path
    return found
