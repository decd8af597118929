"""Resumable extraction: what earlier runs finished (a finished output, files to reuse, chunks
of an interrupted run), chunks written as videos finish, and the final file written whole.

Every file is written to a temp name and renamed; sources are only read, so a finished file
stays readable until its replacement is complete.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from move.errors import ensure_free_space, removed_on_error
from move.extraction.settings import ExtractSettings
from move.features import VIDEOS, create_feature_file, write_video_features
from move.files import write_csv_atomic

HDF5_MARGIN = 1 << 20  # bytes of room for HDF5 metadata beyond the features


FAILURE_COLUMNS = ["video_id", "path", "reason"]
NOT_SETTINGS = ("failures", "shard", "complete", "feature_dim")  # file attributes, not settings


def run_attributes(settings: ExtractSettings, weights_sha: str, mean: tuple, std: tuple) -> dict:
    return {
        "backbone": settings.backbone,
        "weights": str(settings.weights),
        "weights_sha256": weights_sha,
        "frames": settings.frames,
        "resize": settings.resize,
        "crop": settings.crop,
        "mean": mean,
        "std": std,
        "dtype": settings.dtype,
    }


def same_attributes(stored: dict, wanted: dict) -> bool:
    return all(np.array_equal(np.asarray(stored.get(k)), np.asarray(v)) for k, v in wanted.items())


@dataclass
class FinishedWork:
    """The listed videos and failures earlier runs finished, each with the file holding it.

    Sources are finished feature files made with the same settings (the previous output, files
    given to reuse, chunks of an interrupted run). They are only read, never moved or changed,
    so a finished file stays where it is, readable, until its replacement is complete.
    """

    wanted: set[str]
    videos: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, list] = field(default_factory=dict)
    sizes: dict[Path, int] = field(default_factory=dict)

    def add(self, source: Path, ids: list[str], failed_rows: list) -> None:
        """Record the listed videos of ``source`` (first source wins) and its failure rows."""
        self.sizes[source] = len(ids)
        for video_id in ids:
            if video_id in self.wanted:
                self.videos.setdefault(video_id, source)
        for row in failed_rows:
            if row[0] in self.wanted:
                self.failed.setdefault(str(row[0]), [str(value) for value in row])

    def done(self) -> set[str]:
        """Ids needing no work: extracted, or failed in an earlier run."""
        return set(self.videos) | set(self.failed)

    def failure_rows(self) -> list[list[str]]:
        """Failure rows of the listed videos that have no features."""
        return [row for video_id, row in self.failed.items() if video_id not in self.videos]


def _finished_ids(path: Path, attrs: dict) -> list[str] | None:
    """Video ids of ``path`` if it is a finished file made with ``attrs``, else None.

    Opened read-only, so another process may hold it open (a notebook, a training run).
    """
    try:
        with h5py.File(path, "r") as handle:
            usable = bool(handle.attrs.get("complete")) and VIDEOS in handle
            if usable and same_attributes(dict(handle.attrs), attrs):
                return list(handle[VIDEOS].keys())
    except OSError:
        pass
    return None


def _failure_rows(csv: Path) -> list[list[str]]:
    """Rows of the failures CSV beside a finished file; none when absent or unreadable."""
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        return table[FAILURE_COLUMNS].values.tolist()
    except (OSError, ValueError, KeyError):
        return []


def _load_chunks(partial: Path, attrs: dict, work: FinishedWork) -> None:
    """Add the finished chunks of an interrupted run to ``work``.

    A chunk that is unreadable, not marked complete or made with other settings is discarded
    with a warning. One holding videos no longer listed is kept: its listed videos are used.
    """
    for chunk in sorted(partial.glob("chunk-*.h5")):
        try:
            with h5py.File(chunk, "r") as handle:
                if not bool(handle.attrs.get("complete")):
                    raise ValueError("not marked complete")
                if not same_attributes(dict(handle.attrs), attrs):
                    raise ValueError("made with other settings")
                ids = list(handle[VIDEOS].keys())
                failed = json.loads(handle.attrs.get("failures", "[]"))
        except Exception as error:
            warnings.warn(f"discarding {chunk} from an interrupted run ({error})", stacklevel=2)
            chunk.unlink()
            continue
        work.add(chunk, ids, failed)


def collect_finished_work(
    videos: pd.DataFrame,
    out: Path,
    failures: Path,
    reuse: Sequence[str | Path],
    partial: Path,
    attrs: dict,
) -> FinishedWork:
    """What earlier runs finished of ``videos``: ``out`` (with ``failures``), ``reuse`` files
    (each with its ``.failures.csv``) and the chunks in ``partial``, all with these settings.

    Files made with other settings, unfinished or unreadable are not sources (``out`` is then
    simply replaced at the end).
    """
    work = FinishedWork(set(videos.video_id))
    files = [(out, failures)]
    files += [(Path(r), Path(r).with_suffix(".failures.csv")) for r in reuse]
    for path, csv in files:
        if path not in work.sizes and path.is_file():
            ids = _finished_ids(path, attrs)
            if ids is not None:
                work.add(path, ids, _failure_rows(csv))
    _load_chunks(partial, attrs, work)
    return work


def next_chunk_number(partial: Path) -> int:
    numbers = [int(c.stem.split("-")[1]) for c in partial.glob("chunk-*.h5")]
    return max(numbers, default=-1) + 1


def write_chunk(partial: Path, number: int, attrs: dict, buffered: list, failed: list) -> Path:
    """Write buffered videos and failures as one chunk file (temp + rename: all or nothing)."""
    path = partial / f"chunk-{number:06d}.h5"
    tmp = path.with_name(path.name + ".tmp")
    ensure_free_space(tmp, sum(item[1].nbytes for item in buffered) + HDF5_MARGIN)
    with removed_on_error(tmp), create_feature_file(tmp, attrs) as handle:
        for video_id, features, label, n_frames in buffered:
            handle.attrs["feature_dim"] = features.shape[1]
            write_video_features(handle, video_id, features, label, n_frames)
        handle.attrs["failures"] = json.dumps(failed)
        handle.attrs["complete"] = True
    os.replace(tmp, path)
    return path


def write_features(plan: dict[str, Path], attrs: dict, out: Path) -> None:
    """Copy each video of ``plan`` (id -> finished source file) into ``out``: temp, then rename.

    Sources are opened read-only and ``out`` may be one of them: it is replaced only once the
    new file is complete.
    """
    by_source: dict[Path, list[str]] = {}
    for video_id, source in plan.items():
        by_source.setdefault(source, []).append(video_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    ensure_free_space(tmp, sum(p.stat().st_size for p in by_source) + HDF5_MARGIN)
    with removed_on_error(tmp), create_feature_file(tmp, attrs) as dest:
        for source_path, ids in by_source.items():
            with h5py.File(source_path, "r") as source:
                if "feature_dim" in source.attrs:
                    dest.attrs["feature_dim"] = source.attrs["feature_dim"]
                for video_id in ids:
                    source.copy(source[VIDEOS][video_id], dest[VIDEOS], name=video_id)
        dest.attrs["complete"] = True
    os.replace(tmp, out)


def write_failures(rows: list, path: Path) -> None:
    """The failures CSV (``video_id, path, reason``, sorted by id), written atomically."""
    table = pd.DataFrame([list(map(str, row)) for row in rows], columns=FAILURE_COLUMNS)
    write_csv_atomic(table.sort_values("video_id"), path)


def finish_extraction(work: FinishedWork, out: Path, failures: Path, attrs: dict) -> None:
    """Write ``failures`` and ``out`` with exactly the listed videos and failures of ``work``.

    ``out`` is left as it is when it already holds exactly the listed videos.
    """
    write_failures(work.failure_rows(), failures)
    unchanged = set(work.videos.values()) <= {out} and work.sizes.get(out) == len(work.videos)
    if not (unchanged and out.is_file()):
        write_features(work.videos, attrs, out)
