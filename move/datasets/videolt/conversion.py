"""VideoLT's release converted: the released per-video features and label lists, once to HDF5.

Reads a folder of ``<video_id>.npy`` arrays ``[frames, 2048]`` (one backbone: ResNet-50,
ResNet-101 or TSM-R50, any sub-folder layout) and the label folder (``train.lst``,
``test.lst``/``validate.lst`` with lines ``<video_id> <label>[,<label>...]``,
``count-labels-train.lst`` with lines ``<name> <index> <count>.0``, which name the classes);
writes ``features/videolt/<backbone>.h5`` in move's layout
(``move.features``; per-video datasets chunked, ``frames`` attribute 0 = variable per video),
``<backbone>.failures.csv`` and the split CSV (``class_index`` ``"a;b"`` for multi-label).
Conversion is resumable: it fills ``<out>.tmp`` and skips videos already there.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from move.datasets.splits import SPLIT_COLUMNS, check_missing_share
from move.errors import MoveError
from move.features import FORMAT_VERSION, VIDEOS, create_feature_file
from move.files import write_csv_atomic

FLUSH_EVERY = 500
CHUNK_FRAMES = 64


def read_videolt_list(path: str | Path) -> pd.DataFrame:
    """``video_id, classes`` (list of ints) in file order from ``<id> <l1>[,<l2>...]`` lines.

    Refuses a line without a label (``<id> ,``: it would train on no class) and a video listed
    twice, naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"VideoLT list {path} not found: check the dataset's 'labels' in config")
    rows, lines = [], {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        labels = parts[1].split(",") if len(parts) == 2 else None
        if labels is None or not all(label.isdecimal() for label in labels if label):
            raise MoveError(
                f"{path} line {number}: expected '<video_id> <label>[,<label>...]', got {line.strip()!r}"
            )
        classes = sorted({int(label) for label in labels if label})
        if not classes:
            raise MoveError(
                f"{path} line {number}: video {parts[0]} has no label: give its classes"
            )
        if parts[0] in lines:
            raise MoveError(
                f"{path} lines {lines[parts[0]]} and {number}: video {parts[0]} is listed twice: "
                "keep one line"
            )
        lines[parts[0]] = number
        rows.append((parts[0], classes))
    if not rows:
        raise MoveError(
            f"VideoLT list {path} lists no videos: check the dataset's 'labels' in config"
        )
    return pd.DataFrame(rows, columns=["video_id", "classes"])


def read_label_counts(path: str | Path) -> pd.DataFrame | None:
    """``count-labels-train.lst`` as ``index, name, count`` rows, or None when absent.

    VideoLT's lines are ``<name> <index> <count>.0`` (e.g. ``3DPainting 0 137.0``); the counts
    are what the authors' code groups classes by (head > 500, tail <= 100).
    """
    path = Path(path)
    if not path.is_file():
        return None
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            index, count = int(parts[-2]), float(parts[-1])
            if len(parts) < 3 or index < 0 or count < 0 or count != int(count):
                raise ValueError
        except (ValueError, IndexError):
            raise MoveError(
                f"{path} line {number}: expected '<name> <index> <count>' as in VideoLT's "
                f"count-labels-train.lst, got {line.strip()!r}"
            ) from None
        rows.append((index, " ".join(parts[:-2]), int(count)))
    table = pd.DataFrame(rows, columns=["index", "name", "count"])
    if table["index"].duplicated().any():
        raise MoveError(
            f"{path}: class index {table['index'][table['index'].duplicated()].iloc[0]} is listed twice"
        )
    return table.sort_values("index").reset_index(drop=True)


def index_feature_files(
    folder: str | Path, config_key: str = "datasets.<name>.features", unique: bool = False
) -> dict[str, Path]:
    """Video id (file stem) -> ``.npy`` path, anywhere under ``folder``; first in sorted order,
    or (``unique``) an id found twice stops, naming both files (two backbones' folders under
    one root: the first would be taken silently)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoveError(f"feature folder {folder} not found: check '{config_key}'")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.npy")):
        first = found.setdefault(path.stem, path)
        if unique and first != path:
            raise MoveError(
                f"video {path.stem} has two feature files, {first} and {path}: point "
                f"'{config_key}' at the folder of one backbone's arrays (e.g. <root>/ResNet50)"
            )
    return found


def open_partial(tmp: Path, attrs: dict) -> h5py.File:
    """Reopen an unfinished conversion to resume it, or start a new one if it is unreadable."""
    if tmp.is_file():
        try:
            handle = h5py.File(tmp, "a")
            if handle.attrs.get("format_version") == FORMAT_VERSION and VIDEOS in handle:
                same = all(str(handle.attrs.get(k)) == str(v) for k, v in attrs.items())
                if same:
                    return handle
            handle.close()
        except OSError:
            pass
        tmp.unlink()
    return create_feature_file(tmp, attrs)


def read_videolt_labels(
    labels_dir: Path, test_list: str, class_names_file: str | Path | None
) -> tuple[pd.DataFrame, list[str]]:
    """Train and test lists as one table (``video_id, classes, split``) and the class names
    (``class_names_file``, one a line by index, else the indices); a video in both lists stops."""
    train = read_videolt_list(labels_dir / "train.lst").assign(split="train")
    test = read_videolt_list(labels_dir / f"{test_list}.lst").assign(split="test")
    both = sorted(set(train.video_id) & set(test.video_id))
    if both:
        raise MoveError(
            f"video {both[0]} is in both {labels_dir / 'train.lst'} and "
            f"{labels_dir / f'{test_list}.lst'} ({len(both)} such videos): a test video must not "
            "be trained on; check the dataset's 'test_list'"
        )
    table = pd.concat([train, test], ignore_index=True)
    names = class_names_from_counts(labels_dir / "count-labels-train.lst", table)
    if class_names_file:
        if not Path(class_names_file).is_file():
            raise MoveError(f"class names file {class_names_file} not found: check --class-names")
        given = [n.strip() for n in Path(class_names_file).read_text().splitlines() if n.strip()]
        names[: len(given)] = given
    return table, names


def npy_width(path: Path) -> int | None:
    """Feature width (last axis) of a 1-d or 2-d ``.npy`` array, from its header only."""
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError, EOFError):
        return None  # unreadable: logged as a failure when converted
    return int(shape[-1]) if len(shape) in (1, 2) else None


def check_widths(
    paths: list[Path],
    progress: bool = True,
    config_key: str = "datasets.<name>.features.<backbone>",
) -> int | None:
    """The one feature width of the arrays, read from their headers before any conversion;
    arrays of two widths (another backbone's files in the folder) stop, naming one of each."""
    examples: dict[int, Path] = {}
    counts: Counter[int] = Counter()
    for path in tqdm(paths, desc="videolt widths", unit="file", disable=not progress):
        width = npy_width(path)
        if width is not None:
            counts[width] += 1
            examples.setdefault(width, path)
    if len(counts) > 1:
        (common, n_common), (other, n_other) = counts.most_common(2)
        raise MoveError(
            f"VideoLT feature arrays have different widths: {n_common} of {common} (e.g. "
            f"{examples[common]}), {n_other} of {other} (e.g. {examples[other]}): keep one "
            f"backbone's features in '{config_key}'"
        )
    return next(iter(counts), None)


def convert_arrays(
    present: pd.DataFrame, files: dict[str, Path], labels: list[str], handle: h5py.File, progress
) -> list[tuple[str, str, str]]:
    """Copy each video's ``.npy`` array (``present.video_id``, with ``labels`` in its order) into
    the open HDF5 file, skipping those already there (resume); returns the failures (unreadable,
    empty, non-finite or of another width). VideoLT's converter and the authors' MiniKinetics
    features (``move.datasets.npy_features``) both write through it."""
    present = present.assign(label=labels)
    done = set(handle[VIDEOS].keys())
    todo = present[~present.video_id.isin(done)]
    width, dtype = handle.attrs.get("feature_dim"), handle.attrs["dtype"]
    failed = []
    bar = tqdm(
        todo.itertuples(), total=len(todo), desc="convert", unit="video", disable=not progress
    )
    for n, row in enumerate(bar):
        path = files[row.video_id]
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            failed.append((row.video_id, str(path), f"unreadable: {error}"))
            continue
        array = array[None, :] if array.ndim == 1 else array
        if array.ndim != 2 or 0 in array.shape or not np.isfinite(array).all():
            failed.append((row.video_id, str(path), f"bad array {array.shape}"))
            continue
        if width is not None and array.shape[1] != width:
            failed.append((row.video_id, str(path), f"width {array.shape[1]}, not {width}"))
            continue
        with np.errstate(over="ignore"):  # an overflow is this video's failure, below
            stored = array.astype(dtype)
        if not np.isfinite(stored).all():  # finite before the cast, beyond the dtype's range
            largest = float(np.abs(array).max())
            failed.append(
                (row.video_id, str(path), f"values up to {largest:.4g} overflow {dtype}: store "
                 "them as float32 (extract.dtype)")
            )  # fmt: skip
            continue
        chunks = (min(array.shape[0], CHUNK_FRAMES), array.shape[1])
        dataset = handle[VIDEOS].create_dataset(row.video_id, data=stored, chunks=chunks)
        dataset.attrs["label"] = row.label
        dataset.attrs["n_frames"] = array.shape[0]
        if (n + 1) % FLUSH_EVERY == 0:
            handle.flush()
    return failed


def write_npy_features(
    present: pd.DataFrame,
    files: dict[str, Path],
    labels: list[str],
    out: Path,
    backbone: str,
    weights: str,
    source: str,
    dtype: str,
    progress: bool,
    config_key: str = "datasets.<name>.features.<backbone>",
) -> list[tuple[str, str, str]]:
    """Convert the ``present`` videos' arrays into move's HDF5 ``out`` (widths checked from the
    headers first; resumable from ``<out>.tmp``; renamed when complete); returns the failures."""
    width = check_widths([files[v] for v in present.video_id], progress, config_key)
    attrs = {
        "backbone": backbone,
        "weights": weights,
        "weights_sha256": "none",
        "frames": 0,
        "source": source,
        "dtype": dtype,
    } | ({} if width is None else {"feature_dim": width})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open_partial(tmp, attrs) as handle:
        failed = convert_arrays(present, files, labels, handle, progress)
        handle.attrs["complete"] = True
    os.replace(tmp, out)
    return failed


def _split_table(kept: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The split CSV's rows: ``class_index`` and ``label`` ``;``-joined for multi-label."""
    return pd.DataFrame(
        {
            "video_id": kept.video_id,
            "class_index": [";".join(map(str, cs)) for cs in kept.classes],
            "label": [";".join(names[c] for c in cs) for cs in kept.classes],
            "split": kept.split,
        }
    )[SPLIT_COLUMNS]


def class_names_from_counts(path: Path, table: pd.DataFrame) -> list[str]:
    """Class names by index from ``count-labels-train.lst`` (the indices where it is absent)."""
    n_classes = 1 + max(max(c) for c in table.classes if c)
    counts = read_label_counts(path)
    if counts is None:
        print(f"warning: {path} not found: classes are named by their index", file=sys.stderr)
        return [str(i) for i in range(n_classes)]
    names = [str(i) for i in range(max(n_classes, 1 + int(counts["index"].max())))]
    for index, name in zip(counts["index"], counts["name"], strict=True):
        names[index] = name
    return names


def _compare_label_counts(path: Path, train: pd.DataFrame, n_classes: int) -> None:
    """Warn when ``count-labels-train.lst`` disagrees with the train list's per-class counts."""
    counts = read_label_counts(path)
    if counts is not None:
        ours = np.zeros(max(n_classes, 1 + int(counts["index"].max())), dtype=np.int64)
        for cs in train.classes:
            ours[cs] += 1
        if not np.array_equal(ours[counts["index"]], counts["count"]):
            print(
                "warning: per-class counts of train.lst differ from count-labels-train.lst; "
                "groups follow the train videos in the split",
                file=sys.stderr,
            )


def convert_videolt(
    features_dir: str | Path,
    labels_dir: str | Path,
    out: str | Path,
    split_out: str | Path,
    backbone: str,
    test_list: str = "test",
    dtype: str = "float16",
    max_missing_share: float = 0.05,
    class_names_file: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Convert one backbone's VideoLT features and the label lists; returns converted/missing counts.

    Lists and array widths are checked before any conversion.
    """
    labels_dir, out, split_out = Path(labels_dir), Path(out), Path(split_out)
    table, names = read_videolt_labels(labels_dir, test_list, class_names_file)
    files = index_feature_files(features_dir)
    absent = table[~table.video_id.isin(files)]
    missing = pd.DataFrame(
        {
            "video_id": absent.video_id,
            "label": [";".join(names[c] for c in cs) for cs in absent.classes],
            "split": absent.split,
            "reason": "no feature file",
        }
    )
    line = check_missing_share(
        missing, len(table), max_missing_share, "datasets.<name>.max_missing_share"
    )
    if len(missing):
        print(f"warning: {line}", file=sys.stderr)
    present = table[table.video_id.isin(files)].reset_index(drop=True)
    labels = [";".join(names[c] for c in cs) for cs in present.classes]
    source = f"VideoLT features {Path(features_dir).name}"
    failed = write_npy_features(
        present, files, labels, out, backbone, "videolt-release", source, dtype, progress
    )
    rows = [(r.video_id, "", r.reason) for r in missing.itertuples()] + failed
    failures = pd.DataFrame(rows, columns=["video_id", "path", "reason"])
    write_csv_atomic(failures, out.with_suffix(".failures.csv"))
    kept = present[~present.video_id.isin({f[0] for f in failed})]
    write_csv_atomic(_split_table(kept, names), split_out)
    train = table[table.split == "train"]
    _compare_label_counts(labels_dir / "count-labels-train.lst", train, len(names))
    return {"converted": len(kept), "missing": len(missing) + len(failed)}
