"""Stage 3, splits: long-tailed train splits and balanced test splits at an imbalance ratio.

Reads an annotations CSV (Kinetics columns; ``split`` train / val; for MiniKinetics the one
``move list-annotations`` derives from the authors' lists, with their ``class_index``), the
feature file and its failures CSV (to find videos with no features); writes
``splits/<dataset>_ir<IR>.csv`` (``video_id, class_index, label, split``),
``splits/<dataset>_ir<IR>.class_counts.csv`` (``label, class_index, rank, available, count,
group, lost``) and ``splits/<dataset>_missing.csv`` (``video_id, label, split, reason``).

Long-tailing follows the authors' rule: classes ordered head -> tail by their number of training
videos in the list (descending; ties broken by class name ascending, so the order is the same on
every machine; the authors' numpy argsort tie order is reproduced by a class-order file), class
of rank c keeps n_c = floor(n_max * IR ** (c / (C - 1))) videos, the first n_c in list order
(``selection='first'``) or a seeded random n_c (``selection='random'``). Selection runs on the
full list, as the authors had every video; selected videos without features are then dropped
and reported per class as ``lost``, so everyone's split is the paper's minus their losses.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from move.annotations import file_line, refuse_listed_twice, refuse_two_names
from move.errors import MoveError
from move.files import read_csv_input

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


def tail_counts(n_classes: int, n_max: int, imbalance_ratio: float) -> np.ndarray:
    """``long_tail_counts``, refusing a ratio that leaves the tail classes no train video."""
    if n_max < 1:
        raise MoveError("the annotations have no train videos: a split needs some")
    counts = long_tail_counts(n_classes, n_max, imbalance_ratio)
    if counts[-1] < 1:
        raise MoveError(
            f"imbalance ratio {imbalance_ratio} leaves the tail classes floor({n_max} x "
            f"{imbalance_ratio}) = 0 train videos (n_max = {n_max}): use a ratio of at least "
            f"1/{n_max} = {1 / n_max:.4g}"
        )
    return counts


def head_to_tail_order(counts: pd.Series) -> list[str]:
    """Class names ordered by count descending, ties by name ascending (a stable, documented rule)."""
    frame = counts.rename("count").rename_axis("label").reset_index()
    return frame.sort_values(
        ["count", "label"], ascending=[False, True], kind="stable"
    ).label.tolist()


def check_groups(head_min: int, tail_max: int) -> None:
    """Refuse thresholds under which a class could be head and tail at once (all head)."""
    if head_min <= tail_max:
        raise MoveError(
            f"groups: head_min ({head_min}) must be greater than tail_max ({tail_max}); head "
            "classes have >= head_min train videos, tail classes <= tail_max (config "
            "'groups', or --head-min/--tail-max)"
        )


def class_group(count: int, head_min: int, tail_max: int) -> str:
    """'head' if count >= head_min, 'tail' if count <= tail_max, else 'medium'."""
    check_groups(head_min, tail_max)
    if count >= head_min:
        return "head"
    if count <= tail_max:
        return "tail"
    return "medium"


def read_class_order(
    path: str | Path, classes: list[str], class_index: dict[str, int]
) -> list[str]:
    """Head -> tail class order from a file: one class name or original class index per line.

    Reproduces a given run exactly (e.g. the authors' tie order); must name every class once.
    """
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"class order file {path} not found: check 'class_order' in config")
    by_index = {str(i): name for name, i in class_index.items()}
    order = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        name = entry if entry in class_index else by_index.get(entry)
        if name is None:
            raise MoveError(f"{path} line {number}: {entry!r} is not a class name or class index")
        order.append(name)
    if sorted(order) != sorted(classes):
        absent = sorted(set(classes) - set(order))
        twice = sorted({c for c in order if order.count(c) > 1})
        raise MoveError(
            f"class order file {path} must list each of the {len(classes)} classes once "
            f"(absent: {absent[:5]}, twice: {twice[:5]})"
        )
    return order


def build_long_tailed_split(
    train: pd.DataFrame,
    test: pd.DataFrame,
    imbalance_ratio: float,
    max_per_class: int,
    head_min: int,
    tail_max: int,
    selection: str = "first",
    seed: int = 0,
    class_indices: dict[str, int] | None = None,
    class_order: list[str] | None = None,
    missing: set[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-tailed train split plus full test split, and the per-class counts table.

    ``train``/``test`` hold ``video_id`` and ``label`` in list order. Class indices are
    ``class_indices`` (the authors' lists) or else the alphabetical index of each class name
    among all classes (the authors' convention). ``class_order`` overrides the head -> tail
    order. Videos in ``missing`` are selected as if present, then dropped (column ``lost``).
    """
    if selection not in ("first", "random"):
        raise MoveError(f"split selection '{selection}' unknown: use 'first' or 'random'")
    if seed < 0:
        raise MoveError(f"split seed {seed} is negative: use a seed >= 0 (config 'seed', --seed)")
    check_groups(head_min, tail_max)
    classes = sorted(set(train.label) | set(test.label))
    class_index = class_indices or {name: i for i, name in enumerate(classes)}
    available = train.label.value_counts().reindex(classes, fill_value=0)
    order = class_order or head_to_tail_order(available)
    n_max = min(int(available.max()), max_per_class)
    targets = dict(zip(order, tail_counts(len(order), n_max, imbalance_ratio), strict=True))
    rng = np.random.default_rng(seed)
    kept = []
    for label in order:
        rows = train[train.label == label]
        n_keep = min(targets[label], len(rows))
        if selection == "random":
            rows = rows.iloc[np.sort(rng.choice(len(rows), size=n_keep, replace=False))]
        kept.append(rows.iloc[:n_keep])
    selected = pd.concat(kept)
    gone = selected.video_id.isin(missing or set())
    train_split = selected[~gone].assign(split="train")
    test_split = test[~test.video_id.isin(missing or set())].assign(split="test")
    split = pd.concat([train_split, test_split], ignore_index=True)
    split["class_index"] = split.label.map(class_index)
    kept_counts = train_split.label.value_counts().reindex(classes, fill_value=0)
    lost_counts = selected[gone].label.value_counts().reindex(classes, fill_value=0)
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
    counts["lost"] = [int(lost_counts[c]) for c in order]
    return split[SPLIT_COLUMNS], counts


MISSING_COLUMNS = ["video_id", "label", "split", "reason"]


def find_missing(
    table: pd.DataFrame, have_features: set[str], failures: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Listed videos with no features: ``video_id, label, split, reason`` in list order.

    The reason is the extraction failure logged for the video (e.g. ``file missing``, a decode
    error) or ``no features`` when the feature file simply lacks it.
    """
    absent = table[~table.video_id.isin(have_features)]
    reasons = {}
    if failures is not None and len(failures):
        reasons = dict(zip(failures.video_id.astype(str), failures.reason.astype(str), strict=True))
    return pd.DataFrame(
        {
            "video_id": absent.video_id.tolist(),
            "label": absent.label.tolist(),
            "split": absent.split.tolist(),
            "reason": [reasons.get(v, "no features") for v in absent.video_id],
        },
        columns=MISSING_COLUMNS,
    )


def read_failures(path: str | Path | None) -> pd.DataFrame | None:
    """An extraction failures CSV (``video_id, path, reason``), or None when not given/absent."""
    if path is None or not Path(path).is_file():
        return None
    fix = "delete it and rerun the extract stage"
    table = read_csv_input(path, "failures file", fix, dtype=str, keep_default_na=False)
    if not {"video_id", "reason"} <= set(table.columns):
        raise MoveError(f"failures file {path} lacks column video_id or reason: {fix}")
    return table


def check_missing_share(missing: pd.DataFrame, n_listed: int, max_share: float, key: str) -> str:
    """Stop when more than ``max_share`` of the listed videos are missing; else a summary line."""
    share = len(missing) / max(n_listed, 1)
    reasons = missing.reason.value_counts()
    summary = ", ".join(f"{n} {reason}" for reason, n in reasons.head(3).items())
    if share > max_share:
        raise MoveError(
            f"{len(missing)} of {n_listed} listed videos ({share:.1%}) have no file or no features "
            f"({summary}), more than {key} = {max_share}: fix the video folder or raise {key}"
        )
    if len(missing) == 0:
        return "every listed video has features"
    return f"{len(missing)} of {n_listed} listed videos ({share:.1%}) have no features ({summary})"


def lost_per_class(counts: pd.DataFrame) -> str:
    """One line naming the classes that lost selected videos: ``label -n`` (most first)."""
    lost = counts[counts.lost > 0].sort_values(["lost", "rank"], ascending=[False, True])
    if lost.empty:
        return "no selected video was lost"
    shown = ", ".join(f"{r.label} -{r.lost}" for r in lost.head(20).itertuples())
    more = f" and {len(lost) - 20} more classes" if len(lost) > 20 else ""
    return (
        f"{int(lost.lost.sum())} selected train videos lost in {len(lost)} classes: {shown}{more}"
    )


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a split CSV written by ``build_long_tailed_split``; refuse one that is inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"split file {path} not found: run the split stage first")
    fix = "regenerate it with 'move split'"
    table = read_csv_input(
        path,
        "split file",
        fix,
        need_rows=True,
        dtype={"video_id": str, "label": str, "class_index": str},
        keep_default_na=False,
    )
    missing = [c for c in SPLIT_COLUMNS if c not in table.columns]
    if missing:
        raise MoveError(f"split file {path} lacks column(s) {', '.join(missing)}: {fix}")
    check_split_rows(table, path)
    return table


def train_and_test_rows(table: pd.DataFrame, path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``video_id, label`` of the train rows and of the test rows (split val or test); both must
    exist, or the split would have no train or no test videos."""
    train = table[table.split == "train"][["video_id", "label"]]
    test = table[table.split.isin(["val", "test"])][["video_id", "label"]]
    for name, rows in (("train", train), ("val (or test)", test)):
        if rows.empty:
            raise MoveError(
                f"annotations file {path} has no {name} rows: a split needs train videos and "
                "val (or test) videos"
            )
    return train, test


def check_split_rows(table: pd.DataFrame, path: Path) -> None:
    """Refuse a split CSV that would train on wrong targets: a split value other than train or
    test, a class index that is not ``3`` or ``3;17``, a video listed twice, or a class index
    with two labels."""
    fix = "regenerate it with 'move split'"
    other = ~table.split.isin(["train", "test"])
    if other.any():
        raise MoveError(
            f"split file {path} line {file_line(table, other)}: split value "
            f"{table.split[other].iloc[0]!r} is not train or test: {fix}"
        )
    valid = table.class_index.str.fullmatch(r"\d+(;\d+)*")
    if not valid.all():
        raise MoveError(
            f"split file {path} line {file_line(table, ~valid)}: class_index "
            f"{table.class_index[~valid].iloc[0]!r} is not a class index (3, or 3;17 for "
            f"multi-label): {fix}"
        )
    refuse_listed_twice(table, path, "split file", fix)
    refuse_two_names(table, f"split file {path}", fix)


def missing_from_features(
    table: pd.DataFrame,
    features: str | Path | None,
    failures: str | Path | None,
    max_missing_share: float,
    share_key: str,
) -> tuple[pd.DataFrame, str]:
    """Annotated videos without features (with extraction's failure reasons) and the summary
    line; stops when more than ``max_missing_share`` are missing. No feature file: none missing."""
    from move.features import open_feature_file, video_ids

    if features is None:  # a split from the lists alone
        return find_missing(table, set(table.video_id)), "no feature file given"
    with open_feature_file(features) as handle:
        have = set(video_ids(handle))
    missing = find_missing(table, have, read_failures(failures))
    return missing, check_missing_share(missing, len(table), max_missing_share, share_key)


def split_from_annotations(
    table: pd.DataFrame,
    annotations: str | Path,
    missing: pd.DataFrame,
    imbalance_ratio: float,
    groups: tuple[int, int],
    max_per_class: int = 400,
    selection: str = "first",
    seed: int = 0,
    class_order_file: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``build_long_tailed_split`` from an annotations table (train rows -> train, val -> test).

    Class indices are the table's ``class_index`` (the authors' lists) when it has one;
    ``class_order_file`` lists the head -> tail order; ``groups`` is (head_min, tail_max).
    """
    train, test = train_and_test_rows(table, annotations)
    class_indices = None
    if "class_index" in table.columns:
        pairs = table[["label", "class_index"]].drop_duplicates()
        class_indices = dict(zip(pairs.label, pairs.class_index.astype(int), strict=True))
    order = None
    if class_order_file:
        classes = sorted(set(train.label) | set(test.label))
        index = class_indices or {name: i for i, name in enumerate(classes)}
        order = read_class_order(class_order_file, classes, index)
    return build_long_tailed_split(
        train,
        test,
        imbalance_ratio,
        max_per_class,
        *groups,
        selection,
        seed,
        class_indices=class_indices,
        class_order=order,
        missing=set(missing.video_id),
    )
