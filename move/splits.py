"""Stage 3, splits: long-tailed train splits and balanced test splits at an imbalance ratio.

Reads a Kinetics-style annotations CSV (``split`` column: train / val) and the feature file (to
drop videos with no features); writes ``splits/<dataset>_ir<IR>.csv`` (``video_id, class_index,
label, split``) and ``splits/<dataset>_ir<IR>.class_counts.csv`` (``label, class_index, rank,
available, count, group``).

Long-tailing follows the authors' rule: classes ordered head -> tail by their number of training
videos (descending; ties broken by class name, ascending, so the order is the same on every
machine), class of rank c keeps n_c = floor(n_max * IR ** (c / (C - 1))) videos, the first n_c
in list order (``selection='first'``) or a seeded random n_c (``selection='random'``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from move.errors import MoveError

SPLIT_COLUMNS = ["video_id", "class_index", "label", "split"]


def long_tail_counts(n_classes: int, n_max: int, imbalance_ratio: float) -> np.ndarray:
    """Target count per class rank: n_c = floor(n_max * IR ** (c / (C - 1))), c = 0 .. C-1."""
    if not 0 < imbalance_ratio <= 1:
        raise MoveError(f"imbalance ratio must be in (0, 1], got {imbalance_ratio}")
    if n_classes == 1:
        return np.array([n_max])
    return np.array(
        [math.floor(n_max * imbalance_ratio ** (c / (n_classes - 1))) for c in range(n_classes)]
    )


def head_to_tail_order(counts: pd.Series) -> list[str]:
    """Class names ordered by count descending, ties by name ascending (a stable, documented rule)."""
    frame = counts.rename("count").rename_axis("label").reset_index()
    return frame.sort_values(
        ["count", "label"], ascending=[False, True], kind="stable"
    ).label.tolist()


def class_group(count: int, head_min: int, tail_max: int) -> str:
    """'head' if count >= head_min, 'tail' if count <= tail_max, else 'medium'."""
    if count >= head_min:
        return "head"
    if count <= tail_max:
        return "tail"
    return "medium"


def build_long_tailed_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    imbalance_ratio: float,
    max_per_class: int,
    head_min: int,
    tail_max: int,
    selection: str = "first",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-tailed train split plus full test split, and the per-class counts table.

    ``train``/``test`` hold ``video_id`` and ``label`` in list order. Class indices are the
    alphabetical index of each class name among all classes (as the authors' lists).
    """
    if selection not in ("first", "random"):
        raise MoveError(f"split selection '{selection}' unknown: use 'first' or 'random'")
    classes = sorted(set(train.label) | set(test.label))
    class_index = {name: i for i, name in enumerate(classes)}
    available = train.label.value_counts().reindex(classes, fill_value=0)
    order = head_to_tail_order(available)
    n_max = min(int(available.max()), max_per_class)
    targets = dict(zip(order, long_tail_counts(len(order), n_max, imbalance_ratio), strict=True))
    rng = np.random.default_rng(seed)
    kept = []
    for label in order:
        rows = train[train.label == label]
        n_keep = min(targets[label], len(rows))
        if selection == "random":
            rows = rows.iloc[np.sort(rng.choice(len(rows), size=n_keep, replace=False))]
        kept.append(rows.iloc[:n_keep])
    train_split = pd.concat(kept).assign(split="train")
    test_split = test.assign(split="test")
    split = pd.concat([train_split, test_split], ignore_index=True)
    split["class_index"] = split.label.map(class_index)
    kept_counts = train_split.label.value_counts().reindex(classes, fill_value=0)
    counts = pd.DataFrame(
        {
            "label": order,
            "class_index": [class_index[c] for c in order],
            "rank": range(len(order)),
            "available": [int(available[c]) for c in order],
            "count": [int(kept_counts[c]) for c in order],
        }
    )
    counts["group"] = [class_group(n, head_min, tail_max) for n in counts["count"]]
    return split[SPLIT_COLUMNS], counts


def drop_videos_without_features(
    table: pd.DataFrame, have_features: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``table`` into rows whose video has features and rows that do not."""
    present = table.video_id.isin(have_features)
    return table[present], table[~present]


def write_csv_atomic(table: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV via a temporary file and rename, so readers never see half a file."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a split CSV written by ``build_long_tailed_split``."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"split file {path} not found: run the split stage first")
    table = pd.read_csv(path, dtype={"video_id": str, "label": str, "class_index": str})
    missing = [c for c in SPLIT_COLUMNS if c not in table.columns]
    if missing:
        raise MoveError(
            f"split file {path} lacks column(s) {', '.join(missing)}: regenerate it with 'move split'"
        )
    return table
