"""Annotations, the ground floor every stage reads: a Kinetics-style annotations CSV
(``label,youtube_id,time_start,time_end,split``), its video ids and the checks that refuse rows
that would give a wrong split, before extraction or splitting does any work.

Below the stages (imports no stage): extraction lists the videos to decode from it, the datasets
stage draws splits from it, and both name videos by ``kinetics_video_id``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from move.errors import MoveError
from move.files import read_csv_input

ANNOTATION_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
ANNOTATION_SPLITS = ("train", "val", "test")  # val and test rows form the test split
# a Kinetics video id: <youtube_id>_<start:06d>_<end:06d> (``kinetics_video_id``)
KINETICS_ID = re.compile(r"^(?P<youtube_id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")


def kinetics_video_id(youtube_id: str, time_start: float, time_end: float) -> str:
    """The Kinetics file stem ``<youtube_id>_<start:06d>_<end:06d>`` used by the authors' lists."""
    return f"{youtube_id}_{int(time_start):06d}_{int(time_end):06d}"


def read_annotations(path: str | Path) -> pd.DataFrame:
    """Read a Kinetics-style annotations CSV and add ``video_id``; refuse missing columns and
    rows that would give a wrong split (``check_annotation_rows``)."""
    path = Path(path)
    table = read_csv_input(
        path,
        "annotations file",
        "check the dataset's 'annotations' path in config",
        dtype={"youtube_id": str, "label": str},
    )
    missing = [c for c in ANNOTATION_COLUMNS if c not in table.columns]
    if missing:
        raise MoveError(
            f"annotations file {path} lacks column(s) {', '.join(missing)}: "
            f"expected {','.join(ANNOTATION_COLUMNS)}"
        )
    if table.empty:
        raise MoveError(f"annotations file {path} has a header but no rows: list one video a row")
    check_annotation_values(table, path, ANNOTATION_COLUMNS)
    times = table[["time_start", "time_end"]].apply(pd.to_numeric, errors="coerce")
    if times.isna().any(axis=None):
        line = int(np.flatnonzero(times.isna().any(axis=1).to_numpy())[0]) + 2
        raise MoveError(f"annotations file {path} line {line}: time_start/time_end must be seconds")
    table["video_id"] = [
        kinetics_video_id(y, s, e)
        for y, s, e in zip(table.youtube_id, table.time_start, table.time_end, strict=True)
    ]
    check_annotation_rows(table, path)
    return table


def check_annotation_values(table: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    """Refuse an annotations row with an empty value in one of ``columns`` (e.g. no label)."""
    for column in columns:
        empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if empty.any():
            raise MoveError(
                f"annotations file {path} line {file_line(table, empty)}: empty {column}: "
                "fill it in or drop the row"
            )


def check_annotation_rows(table: pd.DataFrame, path: Path) -> None:
    """Refuse annotations that would silently give a wrong split, before any work.

    Labels with leading or trailing spaces (a class of their own), split values other than
    train, val or test (``Train``, ``validate``) and a video listed twice (with two labels, or
    in train and val).
    """
    what = f"annotations file {path}"
    labels = table.label.astype(str)
    padded = labels != labels.str.strip()
    if padded.any():
        label = labels[padded].iloc[0]
        raise MoveError(
            f"{what} line {file_line(table, padded)}: label {label!r} has leading or trailing spaces "
            "(it would be a class of its own): remove them"
        )
    other = ~table.split.astype(str).isin(ANNOTATION_SPLITS)
    if other.any():
        values = ", ".join(repr(v) for v in sorted(set(table.split[other].astype(str))))
        raise MoveError(
            f"{what} line {file_line(table, other)}: split value(s) {values} not understood: "
            "use train for training videos and val (or test) for test videos"
        )
    refuse_listed_twice(table, path, "annotations file", "keep one row per video")
    if "class_index" in table.columns:
        refuse_two_names(table, f"annotations file {path}", "give each class one index")


def file_line(table: pd.DataFrame, mask: pd.Series) -> int:
    """File line of the first row where ``mask`` holds (line 1 is the header)."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 2


def refuse_listed_twice(table: pd.DataFrame, path: Path, what: str, fix: str) -> None:
    """A video id on two rows (two labels, or in train and test) is one line naming both."""
    twice = table.video_id.duplicated(keep=False)
    if twice.any():
        video_id = table.video_id[twice].iloc[0]
        lines = [int(i) + 2 for i in np.flatnonzero((table.video_id == video_id).to_numpy())]
        rows = table[table.video_id == video_id]
        seen = " and ".join(f"{r.label} ({r.split})" for r in rows.head(2).itertuples())
        raise MoveError(
            f"{what} {path} lines {lines[0]} and {lines[1]}: video {video_id} is listed twice, "
            f"as {seen}: {fix}"
        )


def refuse_two_names(table: pd.DataFrame, what: str, fix: str) -> None:
    """Refuse a class index that goes with two labels, or a label with two class indices
    (multi-label rows ``3;17`` / ``a;b`` are taken apart)."""
    pairs = pd.DataFrame(
        [
            (index, name)
            for indices, names in zip(table.class_index.astype(str), table.label, strict=True)
            if len(indices.split(";")) == len(str(names).split(";"))
            for index, name in zip(indices.split(";"), str(names).split(";"), strict=True)
        ],
        columns=["class_index", "label"],
    ).drop_duplicates()
    for column, other_column in (("class_index", "label"), ("label", "class_index")):
        twice = pairs[pairs[column].duplicated(keep=False)]
        if len(twice):
            key, values = twice[column].iloc[0], twice[other_column].iloc[:2].tolist()
            raise MoveError(
                f"{what}: {column} {key!r} goes with two {other_column}s "
                f"{values[0]!r} and {values[1]!r}: {fix}"
            )
