"""Sharded extraction: which shard a video belongs to (stable across list edits), and the
finished shards merged into one feature file."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pandas as pd

from move.errors import MoveError
from move.extraction.resume import (
    FAILURE_COLUMNS,
    NOT_SETTINGS,
    same_attributes,
    write_failures,
    write_features,
)
from move.features import VIDEOS, open_feature_file
from move.files import read_csv_input


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
            elif not same_attributes(part_attrs, attrs):
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
        write_failures(failed, Path(failures))
    write_features(plan, attrs, Path(out))
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
