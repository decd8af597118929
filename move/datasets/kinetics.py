"""Stage 0 for Imbalanced-MiniKinetics200: the authors' lists joined with Kinetics-400 annotations.

Reads the authors' train/val lists (``<youtube_id>_<start:06d>_<end:06d> <class_index>`` per line)
and the Kinetics-400 annotation CSVs (``label,youtube_id,time_start,time_end,split[,is_cc]``);
writes ``data/<dataset>/list_annotations.csv`` (Kinetics columns plus ``video_id`` and the
authors' ``class_index``, in list order) that extraction and splitting read. Also fetches list
files once from a URL or path, recording their sha256 in ``<list>.sha256`` and refusing a list
whose content later differs (the authors' published files, the default sources, are pinned by
their known sha256). (Video files of any Kinetics layout: ``move.extraction.video_files``.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from move.annotations import KINETICS_ID, kinetics_video_id
from move.downloads import (
    check_sha256,
    check_text,
    download,
    read_record,
    record_path,
    write_record,
)
from move.errors import MoveError
from move.files import file_sha256, read_csv_input

LIST_ANNOTATION_COLUMNS = [
    "label",
    "youtube_id",
    "time_start",
    "time_end",
    "split",
    "video_id",
    "class_index",
]


AUTHORS_COMMIT = "7928daae58d4197660a8d1ed70f8815836c280ac"
AUTHORS_DATA_URL = f"https://raw.githubusercontent.com/wjun0830/MOVE/{AUTHORS_COMMIT}/Imbalanced-MiniKinetics200/data/"
AUTHORS_FILES_SHA256 = {  # the files the authors published at AUTHORS_COMMIT
    "train.lst": "94673516235a35e17d40bc0bab8737beb0d8cd864554d18ceca9918935974753",
    "val.lst": "4c54b47e527cf035640aac47641306d1d85a3d7a22578f1a16d3eb5291457810",
    "kinetics_train.csv": "3be97326abee72ee48078cf77cdbaf76e39766d758f49a2d431345dd48ab0064",
    "kinetics_val.csv": "8c8224e0f7defeed168c12f89b8c27bc5efd2b2a3be97867dcd84fba183ab6c7",
}


def authors_url(name: str) -> str:
    """URL of one of the authors' MiniKinetics files (``train.lst``, ``kinetics_val.csv``, ...)."""
    return AUTHORS_DATA_URL + name


def pinned_sha256(source: str) -> str | None:
    """The known sha256 of ``source`` when it is one of the authors' published files."""
    if str(source).startswith(AUTHORS_DATA_URL):
        return AUTHORS_FILES_SHA256.get(str(source).removeprefix(AUTHORS_DATA_URL))
    return None


def fetch_list(source: str, out: str | Path, expected_sha256: str | None = None) -> str:
    """Copy a list (or Kinetics CSV, ``out`` ending in .csv) from a URL or local path to ``out``
    once, verified (whole, text, parses; ``move.downloads.download``) and pinned by sha256.

    The first fetch records the sha256 in ``<out>.sha256``; a later fetch (e.g. after the URL was
    changed in config) whose content differs from the record, or from ``expected_sha256`` (by
    default the pin of the authors' file at that URL), is refused and leaves the existing copy
    untouched. Returns the sha256.
    """
    out = Path(out)
    if expected_sha256:
        expected_sha256 = check_sha256(expected_sha256, "--sha256 (lists.sha256 in config)")
    expected_sha256 = expected_sha256 or pinned_sha256(source)
    pinned = read_record(out)
    record = record_path(out)

    def verify(digest: str) -> None:
        for want, where in ((pinned, f"recorded in {record}"), (expected_sha256, "expected")):
            if want and want.lower() != digest:
                raise MoveError(
                    f"list {source} changed: sha256 {digest} differs from {want} {where}; "
                    "check the source, or delete the record to accept the new list"
                )

    is_csv = out.suffix == ".csv"
    noun = "Kinetics annotation CSV" if is_csv else "list (<video_id> <class_index> a line)"
    parse = read_kinetics_annotations if is_csv else read_authors_list
    digest = download(
        source,
        out,
        "Kinetics annotation CSV" if is_csv else "list file",
        "check the URL and your connection, or give a local path",
        verify,
        check=lambda path: check_text(path, noun, parse),
    )
    if pinned is None:
        write_record(out, digest)
        if not expected_sha256:  # trust on first use: say so, with what later fetches must match
            print(
                f"note: {source} has no pinned sha256: its first download is trusted and its "
                f"sha256 {digest} recorded in {record}; a later fetch must match it (give "
                "lists.sha256 in config to pin it yourself)",
                file=sys.stderr,
            )
    return digest


def verify_list(path: str | Path) -> None:
    """Refuse a fetched list whose bytes no longer match its recorded sha256 (edited by hand?)."""
    want = read_record(path)
    if want is not None:
        have = file_sha256(path)
        if have != want:
            raise MoveError(
                f"list {path} changed since it was fetched (sha256 {have}, recorded {want} in "
                f"{record_path(path)}): delete both files and fetch again"
            )


def read_authors_list(path: str | Path) -> pd.DataFrame:
    """An authors' list as ``video_id, class_index`` in file order; bad lines name their number."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"list file {path} not found: fetch it first (move fetch-list)")
    verify_list(path)
    rows = []
    text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (a list saved by hand) dropped
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise MoveError(
                f"{path} line {number}: expected '<video_id> <class_index>', got {line.strip()!r}"
            )
        rows.append((parts[0], int(parts[1])))
    if not rows:
        raise MoveError(f"list file {path} is empty")
    table = pd.DataFrame(rows, columns=["video_id", "class_index"])
    duplicated = table.video_id[table.video_id.duplicated()]
    if len(duplicated):
        raise MoveError(f"{path}: video id {duplicated.iloc[0]} is listed twice")
    return table


def parse_kinetics_id(video_id: str) -> tuple[str, int, int]:
    """``<youtube_id>_<start:06d>_<end:06d>`` -> (youtube_id, start, end); YouTube ids may hold '_'."""
    match = KINETICS_ID.match(video_id)
    if match is None:
        raise MoveError(
            f"video id {video_id!r} is not '<youtube_id>_<start:06d>_<end:06d>' as in Kinetics lists"
        )
    return match["youtube_id"], int(match["start"]), int(match["end"])


def read_kinetics_annotations(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Kinetics-400 CSVs concatenated, with ``video_id``; refuses missing files or columns."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    tables = []
    for path in map(Path, paths):
        if path.is_file():
            verify_list(path)
        table = read_csv_input(
            path,
            "Kinetics annotations",
            "check 'kinetics_annotations' in config",
            need_rows=True,
            dtype={"youtube_id": str, "label": str},
        )
        missing = [c for c in ("label", "youtube_id", "time_start", "time_end") if c not in table]
        if missing:
            raise MoveError(
                f"Kinetics annotations {path} lack column(s) {', '.join(missing)}: "
                "expected label,youtube_id,time_start,time_end,split"
            )
        tables.append(table)
    if not tables:
        raise MoveError("no Kinetics annotation CSV given: set 'kinetics_annotations' in config")
    table = pd.concat(tables, ignore_index=True)
    table["video_id"] = [
        kinetics_video_id(y, s, e)
        for y, s, e in zip(table.youtube_id, table.time_start, table.time_end, strict=True)
    ]
    return table


def class_names(lists: pd.DataFrame, kinetics: pd.DataFrame) -> dict[int, str]:
    """Class index -> Kinetics class name, from the list ids found in the Kinetics CSVs.

    Each index takes the most frequent label among its videos (matched by full id, else by
    YouTube id). Refuses an index with no match or two indices with one name; warns when the
    indices are not the alphabetical order of the names (the authors' convention).
    """
    by_id = dict(zip(kinetics.video_id, kinetics.label, strict=True))
    by_youtube = dict(zip(kinetics.youtube_id, kinetics.label, strict=True))
    labels = [
        by_id.get(v, by_youtube.get(KINETICS_ID.sub(r"\g<youtube_id>", v))) for v in lists.video_id
    ]
    matched = pd.DataFrame({"class_index": lists.class_index, "label": labels}).dropna()
    names = {}
    for index, group in matched.groupby("class_index", sort=True):
        names[int(index)] = group.label.value_counts().sort_index().idxmax()
    unnamed = sorted(set(lists.class_index) - set(names))
    if unnamed:
        raise MoveError(
            f"class index(es) {', '.join(map(str, unnamed[:10]))} have no video in the Kinetics "
            "annotations: check 'kinetics_annotations' (give the train and validate CSVs)"
        )
    seen: dict[str, int] = {}
    for index, name in names.items():
        if name in seen:
            raise MoveError(
                f"class indices {seen[name]} and {index} both map to '{name}': the lists do not "
                "match these Kinetics annotations"
            )
        seen[name] = index
    if [names[i] for i in sorted(names)] != sorted(names.values()):
        print(
            "warning: class indices are not in alphabetical order of the class names "
            "(expected for the authors' lists); using the lists' indices as given",
            file=sys.stderr,
        )
    return names


def list_annotations(
    train_list: str | Path, val_list: str | Path, kinetics_csvs: Iterable[str | Path]
) -> pd.DataFrame:
    """The MiniKinetics annotations: train list then val list rows, in list order."""
    train = read_authors_list(train_list).assign(split="train")
    val = read_authors_list(val_list).assign(split="val")
    lists = pd.concat([train, val], ignore_index=True)
    both = lists.video_id[lists.video_id.duplicated()]
    if len(both):
        raise MoveError(f"video id {both.iloc[0]} is in both {train_list} and {val_list}")
    names = class_names(lists, read_kinetics_annotations(kinetics_csvs))
    parsed = [parse_kinetics_id(v) for v in lists.video_id]
    lists["youtube_id"] = [p[0] for p in parsed]
    lists["time_start"] = [p[1] for p in parsed]
    lists["time_end"] = [p[2] for p in parsed]
    lists["label"] = lists.class_index.map(names)
    return lists[LIST_ANNOTATION_COLUMNS]
