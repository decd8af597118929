"""VideoLT input: a miniature release (per-video .npy, multi-label lists) converted and trained."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

from move.datasets.videolt.conversion import convert_videolt, read_videolt_list
from move.errors import MoveError
from move.features import open_feature_file, read_video_features
from tests.conftest import VIDEOLT_CLASSES, VIDEOLT_DIM, VIDEOLT_NAMES, make_release


def test_conversion_keeps_features_labels_and_multi_label_split(tmp_path):
    root = make_release(tmp_path, missing={"train005"})
    assert read_videolt_list(root / "labels" / "train.lst").classes.iloc[0] == [0, 1]
    out, split_path = tmp_path / "f" / "resnet50.h5", tmp_path / "s.csv"
    counts = convert_videolt(
        root / "feats",
        root / "labels",
        out,
        split_path,
        "resnet50",
        max_missing_share=0.1,
        progress=False,
    )
    assert counts == {"converted": 31, "missing": 1}
    with open_feature_file(out) as handle:
        stored = read_video_features(handle, "train003")
        assert handle.attrs["backbone"] == "resnet50" and handle.attrs["frames"] == 0
        assert handle["videos"]["train003"].attrs["label"] == "3DPainting;ZumbaDance"
        assert handle["videos"]["train003"].chunks is not None
    source = np.load(root / "feats" / "sub" / "train003.npy")
    np.testing.assert_allclose(stored, source, atol=1e-2)  # float16 storage
    split = pd.read_csv(split_path, dtype=str)
    assert split.set_index("video_id").loc["train000", "class_index"] == "0;1"
    assert "train005" not in set(split.video_id)
    failures = pd.read_csv(out.with_suffix(".failures.csv"))
    assert failures.video_id.tolist() == ["train005"]


def test_too_many_missing_features_stop(tmp_path):
    root = make_release(tmp_path, missing={"train001", "train002", "test001"})
    with pytest.raises(MoveError, match="max_missing_share"):
        convert_videolt(
            root / "feats",
            root / "labels",
            tmp_path / "o.h5",
            tmp_path / "s.csv",
            "resnet50",
            max_missing_share=0.05,
            progress=False,
        )


def test_interrupted_conversion_resumes(tmp_path):
    root = make_release(tmp_path)
    out = tmp_path / "o.h5"
    convert_videolt(
        root / "feats", root / "labels", out, tmp_path / "s.csv", "tsm_resnet50", progress=False
    )
    reference = {k: v[:] for k, v in h5py.File(out, "r")["videos"].items()}
    out.rename(tmp_path / "o.h5.tmp")  # as if killed before the rename, with all videos in
    with h5py.File(tmp_path / "o.h5.tmp", "a") as handle:
        handle.attrs["complete"] = False
        del handle["videos"]["test007"]
    convert_videolt(
        root / "feats", root / "labels", out, tmp_path / "s.csv", "tsm_resnet50", progress=False
    )
    with h5py.File(out, "r") as handle:
        assert set(handle["videos"]) == set(reference)
        np.testing.assert_array_equal(handle["videos"]["test007"][:], reference["test007"])


@pytest.mark.slow
def test_convert_and_train_with_videolt_thresholds(tmp_path):
    root = make_release(tmp_path)
    base = [sys.executable, "-m", "move.cli"]
    out, split = tmp_path / "resnet50.h5", tmp_path / "split.csv"
    convert = subprocess.run(
        base
        + [
            "videolt-convert",
            "--features-dir",
            str(root / "feats"),
            "--labels",
            str(root / "labels"),
            "--backbone",
            "resnet50",
            "--out",
            str(out),
            "--split-out",
            str(split),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert convert.returncode == 0, convert.stderr
    settings = {
        "epochs": 3,
        "batch_size": 8,
        "frames_train": 4,
        "frames_test": 8,
        "eval_every": 3,
        "clusters": 4,
        "d_k": 8,
        "d_v": 8,
        "hidden_dim": 32,
        "codebook_dim": 16,
        "lr": 0.001,
        "feature_dim": VIDEOLT_DIM,
        "device": "cpu",
    }
    result = tmp_path / "videolt_resnet50.json"
    run = subprocess.run(
        base
        + [
            "train",
            "--features",
            str(out),
            "--split",
            str(split),
            "--out",
            str(result),
            "--settings",
            json.dumps(settings),
            "--head-min",
            "9",
            "--tail-max",
            "8",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(result.read_text())
    assert results["n_classes"] == VIDEOLT_CLASSES and results["n_test"] == 8
    assert results["groups"] == {"head_min": 9, "tail_max": 8}
    assert 0 <= results["final"]["mAP"] <= 1
    per_class = pd.read_csv(tmp_path / "videolt_resnet50.per_class.csv")
    assert per_class.train_count.tolist() == [8, 8, 8, 8]  # multi-label counts: 6 + 2 each


def test_count_labels_are_read_in_videolts_format(tmp_path, capsys):
    from move.datasets.videolt.conversion import read_label_counts

    root = make_release(tmp_path)
    counts = read_label_counts(root / "labels" / "count-labels-train.lst")
    assert counts.name.tolist() == VIDEOLT_NAMES and counts["count"].tolist() == [8, 8, 8, 8]
    path = root / "labels" / "count-labels-train.lst"
    path.write_text(path.read_text().replace("Archery 1 8.0", "Archery 1 9.0"))
    convert_videolt(root / "feats", root / "labels", tmp_path / "f.h5", tmp_path / "s.csv",
                    "resnet50", progress=False)  # fmt: skip
    assert "differ from count-labels-train.lst" in capsys.readouterr().err
    path.write_text("3DPainting 0 8.0\n1 8\n")  # the old index-count guess is not VideoLT's
    with pytest.raises(MoveError, match=r"count-labels-train.lst line 2: expected '<name> <index>"):
        read_label_counts(path)
