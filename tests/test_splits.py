import math

import numpy as np
import pandas as pd
import pytest

from move.datasets.splits import build_long_tailed_split, head_to_tail_order, long_tail_counts
from move.errors import MoveError


def authors_like_lists(n_classes=200, per_class=400, n_test=25):
    """A train list of n_classes x per_class ids in list order and a balanced test list."""
    names = [f"class {c:03d}" for c in range(n_classes)]
    train = pd.DataFrame(
        [(f"v{c:03d}_{i:04d}", names[c]) for i in range(per_class) for c in range(n_classes)],
        columns=["video_id", "label"],
    )
    test = pd.DataFrame(
        [(f"t{c:03d}_{i:02d}", names[c]) for c in range(n_classes) for i in range(n_test)],
        columns=["video_id", "label"],
    )
    return train, test


@pytest.mark.parametrize("ir", [0.01, 0.1])
def test_counts_follow_formula_on_200_classes(ir):
    train, test = authors_like_lists()
    split, counts = build_long_tailed_split(train, test, ir, 400, 300, 40)
    expected = [math.floor(400 * ir ** (c / 199)) for c in range(200)]
    assert counts["count"].tolist() == expected
    assert counts["count"].iloc[0] == 400 and counts["count"].iloc[-1] == math.floor(400 * ir)
    per_class = split[split.split == "train"].label.value_counts()
    assert per_class[counts.label.iloc[0]] == 400
    assert (split.split == "test").sum() == 200 * 25


def test_first_videos_in_list_order_are_kept():
    train, test = authors_like_lists(n_classes=3, per_class=10)
    split, counts = build_long_tailed_split(train, test, 0.1, 10, 8, 2)
    tail = counts.label.iloc[-1]
    kept = split[(split.split == "train") & (split.label == tail)].video_id.tolist()
    assert kept == train[train.label == tail].video_id.tolist()[:1]


def test_random_selection_is_seeded():
    train, test = authors_like_lists(n_classes=5, per_class=20)
    a, _ = build_long_tailed_split(train, test, 0.1, 20, 15, 5, selection="random", seed=1)
    b, _ = build_long_tailed_split(train, test, 0.1, 20, 15, 5, selection="random", seed=1)
    c, _ = build_long_tailed_split(train, test, 0.1, 20, 15, 5, selection="random", seed=2)
    first, _ = build_long_tailed_split(train, test, 0.1, 20, 15, 5)
    assert a.equals(b) and not a.equals(c) and not a.equals(first)


def test_ties_break_by_class_name_and_counts_order_head_to_tail():
    counts = pd.Series({"b": 5, "a": 5, "c": 9, "d": 1})
    assert head_to_tail_order(counts) == ["c", "a", "b", "d"]


def test_class_index_is_alphabetical_and_groups_follow_thresholds():
    train, test = authors_like_lists(n_classes=4, per_class=100)
    split, counts = build_long_tailed_split(train, test, 0.1, 100, 60, 20)
    assert dict(zip(counts.label, counts.class_index, strict=True)) == {
        f"class {c:03d}": c for c in range(4)
    }
    assert counts.group.tolist() == ["head", "medium", "medium", "tail"]  # 100, 46, 21, 10
    assert split.columns.tolist() == ["video_id", "class_index", "label", "split"]


def test_split_files_are_byte_identical_across_runs(tmp_path):
    from move.files import write_csv_atomic

    train, test = authors_like_lists(n_classes=20, per_class=30)
    for name in ("a", "b"):
        split, counts = build_long_tailed_split(train, test, 0.05, 30, 20, 5)
        write_csv_atomic(split, tmp_path / f"{name}.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize("ir", [0, -0.5, 1.5])
def test_invalid_imbalance_ratio_is_refused(ir):
    with pytest.raises(MoveError, match="imbalance ratio"):
        long_tail_counts(10, 100, ir)


def test_imbalance_ratio_one_keeps_everything():
    assert np.all(long_tail_counts(7, 50, 1.0) == 50)


@pytest.mark.parametrize("ir", [0.01, 0.1])
def test_200_classes_by_400_ids_split_is_byte_identical_and_follows_formula(tmp_path, ir):
    from move.files import write_csv_atomic

    train, test = authors_like_lists()
    files = []
    for run in ("a", "b"):
        split, counts = build_long_tailed_split(train, test, ir, 400, 300, 40)
        write_csv_atomic(split, tmp_path / f"{run}.csv")
        write_csv_atomic(counts, tmp_path / f"{run}.counts.csv")
        files.append(tmp_path / f"{run}.csv")
    assert files[0].read_bytes() == files[1].read_bytes()
    assert (tmp_path / "a.counts.csv").read_bytes() == (tmp_path / "b.counts.csv").read_bytes()
    written = pd.read_csv(files[0])
    per_class = written[written.split == "train"].groupby("label").size()
    expected = [math.floor(400 * ir ** (c / 199)) for c in range(200)]
    # all classes tie at 400: ties break by name, so rank c is "class c"
    assert [per_class.get(f"class {c:03d}", 0) for c in range(200)] == expected


def test_class_order_file_and_original_indices_are_used(tmp_path):
    from move.datasets.splits import read_class_order

    train, test = authors_like_lists(n_classes=3, per_class=10)
    names = sorted(set(train.label))
    indices = {name: 10 + i for i, name in enumerate(names)}
    (tmp_path / "order.txt").write_text("12\nclass 000\n11\n")  # original indices or names
    order = read_class_order(tmp_path / "order.txt", names, indices)
    split, counts = build_long_tailed_split(
        train, test, 0.1, 10, 8, 2, class_indices=indices, class_order=order
    )
    assert counts.label.tolist() == ["class 002", "class 000", "class 001"]
    assert counts["count"].tolist() == [10, 3, 1]
    assert set(split.class_index) == {10, 11, 12}
    (tmp_path / "bad.txt").write_text("12\n12\n11\n")
    with pytest.raises(MoveError, match="each of the 3 classes once"):
        read_class_order(tmp_path / "bad.txt", names, indices)


def test_missing_videos_are_selected_then_lost_not_refilled():
    train, test = authors_like_lists(n_classes=2, per_class=10)
    first_tail = train[train.label == "class 001"].video_id.iloc[0]
    split, counts = build_long_tailed_split(train, test, 0.1, 10, 8, 2, missing={first_tail})
    assert counts.set_index("label").loc["class 001", ["count", "lost"]].tolist() == [0, 1]
    assert first_tail not in set(split.video_id)
