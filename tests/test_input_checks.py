"""Nonsense input never yields a plausible result (issue 13): the schema refuses what the code
cannot run, naming the allowed range; checks that need data run before any work; each ends in
one line naming the file or key and the fix."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from move.annotations import kinetics_video_id
from move.cli import main
from move.config import validate_config
from move.errors import MoveError
from move.training.loop import train
from move.training.settings import TrainSettings
from tests.conftest import (
    REPO,
    make_release,
    tiny_train,
    write_feature_file,
    write_features_and_split,
)
from tests.snakemake_runs import snakemake

TINY_TRAIN = tiny_train(epochs=1, frames_train=4, frames_test=4)


def error_line(capsys, *argv) -> str:
    """Run ``move`` in-process; assert exit 1 with one stderr line and no traceback."""
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# --- config and settings: the schema's ranges and the rules across keys ----------------------


def shipped_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c.update(seed=-1), "config key 'seed': -1 is less than the minimum of 0"),
        (lambda c: c["demo"].update(seed=-1), "'demo.seed': -1 is less than the minimum of 0"),
        (
            lambda c: c["train"].update(batch_size=1),
            "config key 'train.batch_size': 1 is less than the minimum of 2 with aggregators",
        ),
        (
            lambda c: c["datasets"]["demo"].update(imbalance_ratios=[1e-6]),
            "'datasets.demo.imbalance_ratios[0]': 1e-06 is less than the minimum of 0.0001",
        ),
        (
            lambda c: c["datasets"]["demo"].update(imbalance_ratios=[0.1, 0.02]),
            "'datasets.demo.imbalance_ratios': 0.02 leaves the tail classes floor(max_per_class x "
            "0.02) = 0 videos: use ratios of at least 1/max_per_class = 0.04167",
        ),
        (
            lambda c: c["datasets"]["demo"].update(groups={"head_min": 6, "tail_max": 18}),
            "'datasets.demo.groups': head_min (6) must be greater than tail_max (18)",
        ),
        (
            lambda c: c["datasets"]["videolt"].update(groups={"head_min": 99, "tail_max": 501}),
            "'datasets.videolt.groups': head_min (99) must be greater than tail_max (501)",
        ),
    ],
    ids=["seed", "demo seed", "batch size", "tiny ratio", "ratio", "groups", "videolt groups"],
)
def test_config_values_the_code_cannot_run_are_refused(edit, expected):
    config = shipped_config()
    edit(config)
    with pytest.raises(MoveError) as error:
        validate_config(config)
    assert expected in str(error.value)


def test_batch_size_one_is_fine_without_aggregators():
    config = shipped_config()
    config["train"].update(batch_size=1, aggregators=False, method="plain")
    config["table"] = {"methods": ["plain", "eql"]}
    config["datasets"]["demo"]["train"]["batch_size"] = 1
    validate_config(config)
    TrainSettings.from_dict({"batch_size": 1, "aggregators": False, "method": "plain"})


def test_workflow_with_a_negative_seed_stops_before_any_job(tmp_path):
    config = shipped_config()
    config["seed"] = -1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "results/demo_ir0.1.json")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Error: config: config key 'seed': -1 is less than the minimum of 0" in result.stderr


@pytest.fixture()
def synthetic(tmp_path):
    """Features (3 classes, 8 videos each, 16-d) and a split: 6 train + 2 test per class."""
    return write_features_and_split(tmp_path, per_class=8, train_per_class=6)


@pytest.mark.parametrize(
    "setting, expected",
    [
        ({"epochs": 0}, "train setting 'epochs': 0 is less than the minimum of 1"),
        ({"eval_every": 0}, "train setting 'eval_every': 0 is less than the minimum of 1"),
        ({"clusters": 0}, "train setting 'clusters': 0 is less than the minimum of 1"),
        ({"frames_train": 0}, "train setting 'frames_train': 0 is less than the minimum of 1"),
        ({"batch_size": 1}, "train setting 'batch_size': 1 is less than the minimum of 2"),
        ({"seed": -1}, "train setting 'seed': -1 is less than the minimum of 0"),
    ],
)
def test_train_settings_out_of_range_stop_before_training(synthetic, setting, expected, capsys):
    features, split = synthetic
    out = features.parent / "r.json"
    settings = json.dumps({**TINY_TRAIN, **setting})
    error = error_line(capsys, "train", "--features", features, "--split", split, "--out", out,
                       "--settings", settings, "--head-min", "6", "--tail-max", "2", "--quiet")  # fmt: skip
    assert expected in error
    assert not out.exists() and not out.with_suffix(".pt.partial").exists()


def test_extract_with_zero_frames_stops_before_any_work(tiny_videos, tmp_path, capsys):
    out = tmp_path / "resnet50.h5"
    error = error_line(capsys, "extract", "--annotations", tiny_videos / "annotations.csv",
                       "--videos", tiny_videos / "videos", "--out", out, "--frames", "0",
                       "--device", "cpu", "--quiet")  # fmt: skip
    assert error.endswith("extract setting 'frames': 0 is less than the minimum of 1")
    assert not out.exists() and not list(tmp_path.iterdir())


# --- annotations, splits and lists: checks that need data ------------------------------------


@pytest.fixture()
def annotated(tmp_path):
    """Annotations (3 classes, 6 train + 2 val each) and features for every listed video."""
    rows = [(f"class{c}", f"y{c}x{i}", 0, 10, "train" if i < 6 else "val")
            for c in range(3) for i in range(8)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["label", "youtube_id", "time_start", "time_end", "split"])
    ids = {kinetics_video_id(y, 0, 10): label for label, y, *_ in rows}
    features = write_feature_file(tmp_path / "f.h5", ids, frames=2, dim=4)
    return table, features


def split_argv(annotations, features, out, *options) -> list:
    return ["split", "--annotations", annotations, "--features", features, "--ir", "0.5",
            "--max-per-class", "6", "--head-min", "5", "--tail-max", "3", "--out", out,
            "--class-counts", out.with_suffix(".counts.csv"), *options]  # fmt: skip


def with_row(table: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    table = table.copy()
    for column, value in values.items():
        table.loc[row, column] = value
    return table


BAD_ANNOTATIONS = {
    "empty label": (lambda t: with_row(t, 1, label=""), "line 3: empty label: fill it in"),
    "trailing space": (
        lambda t: with_row(t, 2, label="class0 "),
        "line 4: label 'class0 ' has leading or trailing spaces (it would be a class of its own)",
    ),
    "Train": (
        lambda t: with_row(t, 0, split="Train"),
        "line 2: split value(s) 'Train' not understood: use train for training videos and val",
    ),
    "validate": (
        lambda t: t.replace({"split": {"val": "validate"}}),
        "line 8: split value(s) 'validate' not understood",
    ),
    "two labels": (
        lambda t: with_row(t, 9, youtube_id="y0x0"),
        "lines 2 and 11: video y0x0_000000_000010 is listed twice, as class0 (train) and "
        "class1 (train): keep one row per video",
    ),
    "train and val": (
        lambda t: with_row(t, 7, youtube_id="y0x0"),
        "lines 2 and 9: video y0x0_000000_000010 is listed twice, as class0 (train) and "
        "class0 (val)",
    ),
    "no val rows": (
        lambda t: t[t.split == "train"],
        "has no val (or test) rows: a split needs train videos and val (or test) videos",
    ),
    "header only": (lambda t: t.iloc[:0], "has a header but no rows: list one video a row"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotations_stop_the_split_naming_file_and_line(annotated, tmp_path, case, capsys):
    table, features = annotated
    edit, expected = BAD_ANNOTATIONS[case]
    edit(table).to_csv(tmp_path / "annotations.csv", index=False)
    out = tmp_path / "split.csv"
    error = error_line(capsys, *split_argv(tmp_path / "annotations.csv", features, out))
    assert f"annotations file {tmp_path / 'annotations.csv'}" in error and expected in error
    assert not out.exists()


def test_bad_annotations_stop_extraction_before_any_video(tiny_videos, tmp_path, capsys):
    table = pd.read_csv(tiny_videos / "annotations.csv", dtype=str)
    table.loc[3, "split"] = "Train"
    table.to_csv(tmp_path / "annotations.csv", index=False)
    out = tmp_path / "features" / "resnet50.h5"
    error = error_line(capsys, "extract", "--annotations", tmp_path / "annotations.csv",
                       "--videos", tiny_videos / "videos", "--out", out, "--quiet")  # fmt: skip
    assert "line 5: split value(s) 'Train' not understood" in error
    assert not out.parent.exists()


def test_empty_csv_files_name_the_file(annotated, tmp_path, capsys):
    table, features = annotated
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    error = error_line(capsys, *split_argv(empty, features, tmp_path / "s.csv"))
    assert f"annotations file {empty} is empty (0 bytes, no header)" in error
    table.to_csv(tmp_path / "annotations.csv", index=False)
    argv = split_argv(tmp_path / "annotations.csv", features, tmp_path / "s.csv", "--failures")
    error = error_line(capsys, *argv, empty)
    assert f"failures file {empty} is empty (0 bytes, no header): delete it and rerun" in error


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--head-min", "2", "--tail-max", "4"], "head_min (2) must be greater than tail_max (4)"),
        (["--seed", "-1", "--selection", "random"], "split seed -1 is negative: use a seed >= 0"),
        (
            ["--ir", "0.1"],
            "imbalance ratio 0.1 leaves the tail classes floor(6 x 0.1) = 0 train videos (n_max "
            "= 6): use a ratio of at least 1/6 = 0.1667",
        ),
    ],
)
def test_split_options_that_mislead_are_refused(annotated, tmp_path, options, expected, capsys):
    table, features = annotated
    table.to_csv(tmp_path / "annotations.csv", index=False)
    out = tmp_path / "split.csv"
    error = error_line(capsys, *split_argv(tmp_path / "annotations.csv", features, out, *options))
    assert expected in error and not out.exists()


BAD_SPLITS = {
    "empty class index": (
        lambda t: with_row(t, 4, class_index=""),
        "line 6: class_index '' is not a class index (3, or 3;17 for multi-label)",
    ),
    "listed twice": (
        lambda t: with_row(t, 7, video_id="v0_0"),
        "lines 2 and 9: video v0_0 is listed twice, as class0 (train) and class0 (test)",
    ),
    "two labels": (
        lambda t: with_row(t, 3, label="class9"),
        "class_index '0' goes with two labels 'class0' and 'class9'",
    ),
    "header only": (lambda t: t.iloc[:0], "has a header but no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPLITS))
def test_bad_split_stops_training_before_any_epoch(synthetic, case, capsys):
    features, split = synthetic
    edit, expected = BAD_SPLITS[case]
    edit(pd.read_csv(split, dtype=str)).to_csv(split, index=False)
    out = features.parent / "r.json"
    error = error_line(capsys, "train", "--features", features, "--split", split, "--out", out,
                       "--settings", json.dumps(TINY_TRAIN), "--head-min", "6", "--tail-max",
                       "2", "--quiet")  # fmt: skip
    assert f"split file {split}" in error and expected in error
    assert error.endswith("regenerate it with 'move split'") and not out.exists()


# --- VideoLT ---------------------------------------------------------------------------------


def videolt_argv(root, out) -> list:
    return ["videolt-convert", "--features-dir", root / "feats", "--labels", root / "labels",
            "--backbone", "resnet50", "--out", out, "--split-out", root / "split.csv", "--quiet"]  # fmt: skip


def test_videolt_array_of_another_width_stops_before_converting(tmp_path, capsys):
    root = make_release(tmp_path)
    other = root / "feats" / "train004.npy"
    np.save(other, np.zeros((5, 8), dtype=np.float32))  # another backbone's width
    out = tmp_path / "f" / "resnet50.h5"
    error = error_line(capsys, *videolt_argv(root, out))
    assert "VideoLT feature arrays have different widths: 31 of 16" in error
    assert f"1 of 8 (e.g. {other})" in error and "keep one backbone's features" in error
    assert not out.parent.exists() and not (root / "split.csv").exists()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda lines: lines[:2] + ["train002 ,"] + lines[3:],
            "line 3: video train002 has no label",
        ),
        (lambda lines: lines + ["train001 2"], "lines 2 and 25: video train001 is listed twice"),
    ],
    ids=["no label", "listed twice"],
)
def test_videolt_list_without_label_or_listed_twice_stops(tmp_path, edit, expected, capsys):
    root = make_release(tmp_path)
    lst = root / "labels" / "train.lst"
    lst.write_text("\n".join(edit(lst.read_text().splitlines())) + "\n")
    error = error_line(capsys, *videolt_argv(root, tmp_path / "o.h5"))
    assert f"{lst} {expected}" in error and not (tmp_path / "o.h5").exists()


def test_videolt_video_in_train_and_test_lists_stops(tmp_path, capsys):
    root = make_release(tmp_path)
    with open(root / "labels" / "test.lst", "a") as handle:
        handle.write("train003 1\n")
    error = error_line(capsys, *videolt_argv(root, tmp_path / "o.h5"))
    assert "video train003 is in both" in error and "a test video must not be trained on" in error


# --- results, checkpoints, ids ---------------------------------------------------------------


@pytest.fixture()
def trained(synthetic):
    """A checkpoint and results JSON of one tiny epoch on ``synthetic``."""
    features, split = synthetic
    out = features.parent / "results" / "tiny_ir0.5.json"
    train(features, split, out, out.with_suffix(".pt"), TrainSettings.from_dict(TINY_TRAIN), 6, 2,
          progress=False)  # fmt: skip
    return features, split, out


def test_truncated_results_json_names_the_file(trained, capsys):
    _, _, out = trained
    out.write_text(out.read_text()[:200])  # killed mid-write by hand, or a bad copy
    message = f"results file {out} is not valid JSON"
    for argv in (
        ["table", f"move={out}", "--out-md", out.with_suffix(".md"), "--out-csv", "t.csv"],
        ["imbalance-table", out, "--out", out.with_suffix(".md")],
        ["plot", "curves", "--results", out, "--out", out.with_suffix(".png")],
    ):
        error = error_line(capsys, *argv)
        assert message in error and "cut short?" in error, error
    assert not list(out.parent.glob("*.md")) and not list(out.parent.glob("*.png"))


def test_evaluate_with_other_features_or_classes_names_the_mismatch(trained, tmp_path, capsys):
    features, split, out = trained
    labels = {f"v{c}_{i}": f"class{c}" for c in range(3) for i in range(8)}
    narrow = write_feature_file(tmp_path / "narrow.h5", labels, frames=4, dim=8)
    checkpoint = out.with_suffix(".pt")
    argv = ["evaluate", "--checkpoint", checkpoint, "--split", split, "--device", "cpu"]
    error = error_line(capsys, *argv, "--features", narrow)
    assert f"checkpoint {checkpoint} takes 16-d features but {narrow} holds 8-d ones" in error
    two = pd.read_csv(split)
    two = two[two.class_index < 2]
    two.to_csv(tmp_path / "two.csv", index=False)
    argv = ["evaluate", "--checkpoint", checkpoint, "--features", features, "--device", "cpu"]
    error = error_line(capsys, *argv, "--split", tmp_path / "two.csv")
    assert f"has 3 classes but split {tmp_path / 'two.csv'} has 2" in error


def test_video_ids_starting_with_a_dash_are_values(synthetic, tmp_path):
    features, split = synthetic
    dashed = "-Ab3_000001_000011"  # YouTube ids may start with '-'
    table = pd.read_csv(split).replace({"video_id": {"v0_7": dashed}})
    table.to_csv(split, index=False)
    labels = {v: f"class{c}" for v, c in zip(table.video_id, table.class_index, strict=True)}
    features = write_feature_file(features, labels, frames=4, dim=16)
    out = tmp_path / "r.json"
    train(features, split, out, out.with_suffix(".pt"), TrainSettings.from_dict(TINY_TRAIN), 6, 2,
          progress=False)  # fmt: skip
    png = tmp_path / "attention.png"
    code = main(["plot", "attention", "--checkpoint", str(out.with_suffix(".pt")), "--features",
                 str(features), "--split", str(split), "--video", dashed, "v1_7", "--out", str(png)])  # fmt: skip
    assert code == 0 and png.is_file()
    shown = pd.read_csv(png.with_suffix(".csv"))
    assert {dashed, "v1_7"} <= set(shown.video_id)


# --- features checked on the way in (at split and at train) ------------------------------------


def features_with(tmp_path, edit) -> tuple:
    """3 classes × 8 videos (5 train), then ``edit(videos group)`` rewrites some videos."""
    import h5py

    features, split = write_features_and_split(tmp_path, per_class=8, train_per_class=5)
    with h5py.File(features, "r+") as handle:
        edit(handle["videos"])
    return features, split


def replace(videos, video_id: str, data) -> None:
    label = videos[video_id].attrs["label"]
    del videos[video_id]
    videos.create_dataset(video_id, data=data)
    videos[video_id].attrs.update(label=label, n_frames=4)


def run_train(features, split, tmp_path, capsys):
    settings = json.dumps(TINY_TRAIN)
    code = main(["train", "--features", str(features), "--split", str(split), "--out",
                 str(tmp_path / "r.json"), "--settings", settings, "--head-min", "5",
                 "--tail-max", "2", "--quiet"])  # fmt: skip
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (np.ones((4, 8), np.float32), "video v1_2 is 8 wide, the file's features 16"),
        (np.ones(16, np.float32), "video v1_2 is stored 1-D (16,), not [frames, width]"),
        (np.ones((0, 16), np.float32), "video v1_2 has 0 stored frames"),
        (np.ones((4, 16), np.int8), "video v1_2 is stored as int8, not float16/float32"),
    ],
)
def test_a_malformed_video_in_a_feature_file_is_one_line_naming_it(
    tmp_path, capsys, data, expected
):
    features, split = features_with(tmp_path, lambda videos: replace(videos, "v1_2", data))
    code, err = run_train(features, split, tmp_path, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"feature file {features}: {expected}: delete it and rerun the extract stage" in err
    assert not (tmp_path / "r.json").exists()


def test_constant_videos_and_a_constant_class_are_named_and_training_goes_on(tmp_path, capsys):
    def edit(videos):
        for video_id in ("v0_1", *(f"v2_{i}" for i in range(8))):
            replace(videos, video_id, np.zeros((4, 16), np.float32))

    features, split = features_with(tmp_path, edit)
    code, err = run_train(features, split, tmp_path, capsys)
    assert code == 0, err
    assert "9 video(s) have constant features (all zero or all equal" in err
    assert "e.g. v0_1, v2_0, v2_1 …" in err
    assert "every video of class 'class2' (8) has constant features" in err
    assert (tmp_path / "r.json").is_file()


def test_a_dead_backbone_is_refused_before_training(tmp_path, capsys):
    def edit(videos):
        for video_id in list(videos):
            replace(videos, video_id, np.full((4, 16), 0.25, np.float32))

    features, split = features_with(tmp_path, edit)
    code, err = run_train(features, split, tmp_path, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "24 of 24 videos have constant features" in err and "a dead backbone" in err
    assert not (tmp_path / "r.json").exists()
