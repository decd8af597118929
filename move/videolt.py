"""VideoLT as an input: the released per-video features and label lists, converted once to HDF5.

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
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from move.errors import MoveError
from move.features import FORMAT_VERSION, VIDEOS, create_feature_file
from move.splits import SPLIT_COLUMNS, check_missing_share, write_csv_atomic

FLUSH_EVERY = 500
CHUNK_FRAMES = 64


def read_videolt_list(path: str | Path) -> pd.DataFrame:
    """``video_id, classes`` (list of ints) in file order from ``<id> <l1>[,<l2>...]`` lines."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"VideoLT list {path} not found: check 'videolt.labels' in config")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 2:
                raise ValueError
            classes = sorted({int(c) for c in parts[1].split(",") if c != ""})
        except ValueError:
            raise MoveError(
                f"{path} line {number}: expected '<video_id> <label>[,<label>...]', got {line.strip()!r}"
            ) from None
        rows.append((parts[0], classes))
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


def index_feature_files(folder: str | Path) -> dict[str, Path]:
    """Video id (file stem) -> ``.npy`` path, anywhere under ``folder``; first in sorted order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoveError(f"VideoLT feature folder {folder} not found: check 'videolt.features'")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.npy")):
        found.setdefault(path.stem, path)
    return found


def _open_partial(tmp: Path, attrs: dict) -> h5py.File:
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
    """Convert one backbone's VideoLT features and the label lists; returns converted/missing counts."""
    labels_dir, out, split_out = Path(labels_dir), Path(out), Path(split_out)
    train = read_videolt_list(labels_dir / "train.lst").assign(split="train")
    test = read_videolt_list(labels_dir / f"{test_list}.lst").assign(split="test")
    table = pd.concat([train, test], ignore_index=True).drop_duplicates("video_id")
    label_counts = read_label_counts(labels_dir / "count-labels-train.lst")
    n_classes = 1 + max(max(c) for c in table.classes if c)
    if label_counts is not None:
        n_classes = max(n_classes, 1 + int(label_counts["index"].max()))
    names = [str(i) for i in range(n_classes)]
    if label_counts is not None:
        for index, name in zip(label_counts["index"], label_counts["name"], strict=True):
            names[index] = name
    else:
        print(
            f"warning: {labels_dir / 'count-labels-train.lst'} not found: classes are named by "
            "their index",
            file=sys.stderr,
        )
    if class_names_file:
        given = [n.strip() for n in Path(class_names_file).read_text().splitlines() if n.strip()]
        names[: len(given)] = given
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
    line = check_missing_share(missing, len(table), max_missing_share, "videolt.max_missing_share")
    if len(missing):
        print(f"warning: {line}", file=sys.stderr)
    present = table[table.video_id.isin(files)].reset_index(drop=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    attrs = {
        "backbone": backbone,
        "weights": "videolt-release",
        "weights_sha256": "none",
        "frames": 0,
        "source": f"VideoLT features {Path(features_dir).name}",
        "dtype": dtype,
    }
    failed = []
    with _open_partial(tmp, attrs) as handle:
        done = set(handle[VIDEOS].keys())
        todo = present[~present.video_id.isin(done)]
        for n, row in enumerate(
            tqdm(
                todo.itertuples(),
                total=len(todo),
                initial=0,
                desc=f"videolt {backbone}",
                unit="video",
                disable=not progress,
            )
        ):
            try:
                array = np.load(files[row.video_id], allow_pickle=False)
            except (OSError, ValueError) as error:
                failed.append((row.video_id, str(files[row.video_id]), f"unreadable: {error}"))
                continue
            if array.ndim == 1:
                array = array[None, :]
            if array.ndim != 2 or array.shape[0] == 0 or not np.isfinite(array).all():
                failed.append((row.video_id, str(files[row.video_id]), f"bad array {array.shape}"))
                continue
            frames = array.shape[0]
            dataset = handle[VIDEOS].create_dataset(
                row.video_id,
                data=array.astype(dtype),
                chunks=(min(frames, CHUNK_FRAMES), array.shape[1]),
            )
            dataset.attrs["label"] = ";".join(names[c] for c in row.classes)
            dataset.attrs["n_frames"] = frames
            handle.attrs["feature_dim"] = array.shape[1]
            if (n + 1) % FLUSH_EVERY == 0:
                handle.flush()
        handle.attrs["complete"] = True
    os.replace(tmp, out)
    failures = out.with_suffix(".failures.csv")
    rows = [(r.video_id, "", r.reason) for r in missing.itertuples()] + failed
    write_csv_atomic(pd.DataFrame(rows, columns=["video_id", "path", "reason"]), failures)

    bad = {f[0] for f in failed}
    kept = present[~present.video_id.isin(bad)]
    split = pd.DataFrame(
        {
            "video_id": kept.video_id,
            "class_index": [";".join(map(str, cs)) for cs in kept.classes],
            "label": [";".join(names[c] for c in cs) for cs in kept.classes],
            "split": kept.split,
        }
    )[SPLIT_COLUMNS]
    write_csv_atomic(split, split_out)
    if label_counts is not None:
        ours = np.zeros(n_classes, dtype=np.int64)
        for cs in train.classes:
            ours[cs] += 1
        if not np.array_equal(ours[label_counts["index"]], label_counts["count"]):
            print(
                "warning: per-class counts of train.lst differ from count-labels-train.lst; "
                "groups follow the train videos in the split",
                file=sys.stderr,
            )
    return {"converted": len(kept), "missing": len(missing) + len(failed)}
