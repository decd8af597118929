"""The authors' MiniKinetics200 features as an input: per-video ``.npy`` arrays under
``<root>/ResNet50/{train,val}/`` converted once to move's HDF5, then split -> train -> table with no
video folder set. Ids are synthetic, in the lists' form (``<youtube_id>_<start:06d>_<end:06d>``,
YouTube ids with ``-`` and ``_`` as real ones have)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from move.datasets.npy_features import convert_npy_features
from move.extraction.features import open_feature_file
from tests.conftest import tiny_train
from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

CLASSES = ["abseiling", "air drumming", "answering questions", "applauding"]
TRAIN, VAL = 8, 3


def youtube_id(c: int, i: int) -> str:
    return f"{'-' if i % 3 == 0 else 'a'}{c}b_{i:02d}xYz9"[:11]


def authors_release(root, frames=6, dim=2048, skip=()):
    """Lists, Kinetics CSV and ``<root>/ResNet50/{train,val}/<id>.npy`` (float32, class centres)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(CLASSES), dim)).astype(np.float32) * 2
    lists, rows = {"train": [], "val": []}, []
    for c, label in enumerate(CLASSES):
        for i in range(TRAIN + VAL):
            split = "train" if i < TRAIN else "val"
            start = 10 * i
            video_id = f"{youtube_id(c, i)}_{start:06d}_{start + 10:06d}"
            lists[split].append(f"{video_id} {c}")
            rows.append((label, youtube_id(c, i), start, start + 10, split))
            if video_id in skip:
                continue
            folder = root / "ResNet50" / split
            folder.mkdir(parents=True, exist_ok=True)
            array = centres[c] + rng.normal(size=(frames, dim)).astype(np.float32)
            np.save(folder / f"{video_id}.npy", array.astype(np.float32))
    for split, lines in lists.items():
        (root / f"{split}.lst").write_text("\n".join(lines) + "\n")
    columns = ["label", "youtube_id", "time_start", "time_end", "split"]
    pd.DataFrame(rows, columns=columns).to_csv(root / "kinetics.csv", index=False)
    return root


def annotations(root) -> pd.DataFrame:
    table = pd.read_csv(root / "kinetics.csv", dtype={"youtube_id": str})
    table["video_id"] = [
        f"{y}_{s:06d}_{e:06d}"
        for y, s, e in zip(table.youtube_id, table.time_start, table.time_end, strict=True)
    ]
    return table


def test_conversion_keeps_the_arrays_labels_and_lists_the_missing(tmp_path):
    missing = f"{youtube_id(1, 2)}_000020_000030"
    root = authors_release(tmp_path, skip={missing})
    broken = root / "ResNet50" / "train" / f"{youtube_id(2, 1)}_000010_000020.npy"
    np.save(broken, np.zeros((6, 1024), np.float32))  # another backbone's width
    table = annotations(root)
    out = tmp_path / "features" / "resnet50.h5"
    with pytest.raises(Exception, match="different widths"):
        convert_npy_features(root / "ResNet50", table, out, "resnet50", progress=False)
    np.save(broken, np.ones((6, 2048), np.float32))
    counts = convert_npy_features(root / "ResNet50", table, out, "resnet50", progress=False)
    assert counts == {"converted": len(table) - 1, "missing": 1}
    with open_feature_file(out) as handle:
        video = handle["videos"][f"{youtube_id(0, 0)}_000000_000010"]
        assert video.shape == (6, 2048) and video.attrs["label"] == "abseiling"
        assert handle.attrs["weights"] == "authors-features" and handle.attrs["feature_dim"] == 2048
    failures = pd.read_csv(tmp_path / "features" / "resnet50.failures.csv", keep_default_na=False)
    assert failures.values.tolist() == [[missing, "", "no feature file"]]


@pytest.mark.slow
def test_minikinetics_runs_from_the_authors_features_without_videos(tmp_path):
    root = authors_release(tmp_path / "release")
    train = tiny_train(epochs=2, frames_train=4, frames_test=4, batch_size=8)
    config = merged_config(
        {
            **TINY_CONFIG,
            "datasets": {
                "minikinetics": {
                    "videos": None,
                    "lists": {"train": str(root / "train.lst"), "val": str(root / "val.lst")},
                    "kinetics_annotations": [str(root / "kinetics.csv")],
                    "features": {"resnet50": str(root / "ResNet50")},
                    "imbalance_ratios": [0.5],
                    "max_per_class": TRAIN,
                    "groups": {"head_min": 7, "tail_max": 4},
                    "train": train,
                }
            },
        }
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(tmp_path, "-n", "results/minikinetics_all.md")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "extract_shard" not in plan.stdout and "npy_features" in plan.stdout
    done = snakemake(tmp_path, "results/minikinetics_all.md")
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "results" / "minikinetics_all.md").read_text()
    assert "IR 0.5 AP" in table and "MOVE" in table
    split = pd.read_csv(tmp_path / "splits" / "minikinetics_ir0.5.csv")
    assert (split.split == "test").sum() == len(CLASSES) * VAL
    assert not (tmp_path / "data" / "minikinetics" / "videos").exists()
