"""The authors' MiniKinetics200 features as an input: per-video ``.npy`` arrays under
``<root>/ResNet50/{train,val}/`` converted once to move's HDF5, then split -> train -> table with no
video folder set, for the authors' real list ids of four classes (ids starting with ``-`` and
holding ``_``, as YouTube's do)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from move.datasets.npy_features import convert_npy_features
from move.features import open_feature_file
from tests.conftest import tiny_train
from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

# The authors' list ids (github.com/wjun0830/MOVE at 7928daa, Imbalanced-MiniKinetics200/data):
# the first 8 train.lst and 3 val.lst ids of classes 0-3, with their Kinetics-400 class names.
REAL_IDS = {
    "abseiling": (
        "-bwYZwnwb8E_000013_000023 -j9C-auQoKs_000207_000217 -o4X5Z_Isyc_000085_000095 "
        "-Qhiiw9yJvc_000825_000835 -WKCwDRp_jk_000000_000010 -Z1X9B-F04Q_000012_000022 "
        "0347ZoDXyP0_000095_000105 035LtPeUFTE_000085_000095",
        "0wR5jVB-WPk_000417_000427 3yaoNwz99xM_000062_000072 6IbvOJxXnOo_000047_000057",
    ),
    "air drumming": (
        "-6b9q-zQnPk_000020_000030 -6_yubx7iSg_000001_000011 -cfwqyJGnt0_000002_000012 "
        "-dglCzcubsw_000246_000256 -fTmHyOG-CY_000000_000010 -LVME0pkaW8_000024_000034 "
        "-ni1UWaBmL0_000056_000066 -rI2ZqZ5vH0_000007_000017",
        "7LSJ2Ryv1a8_000000_000010 9bx-YVn-N2s_000000_000010 9MTTl2lMkcY_000009_000019",
    ),
    "archery": (
        "-5NN5hdIwTc_000036_000046 -Hn5WqDh9hI_000104_000114 -lPLLbPsMDU_000016_000026 "
        "-Njxj40a0OQ_000000_000010 -OVw1usq968_000213_000223 -R5E3-cmrq8_000000_000010 "
        "-U1ym96B9l4_000010_000020 -WrKlvp_x_0_000075_000085",
        "-Qz25rXdMjE_000014_000024 27jJKXiB9Y8_000009_000019 3and4vWkW4s_000011_000021",
    ),
    "arm wrestling": (
        "-fhzavCqqTA_000017_000027 -FS5hMf67ro_000044_000054 -pv8S0MpXUo_000153_000163 "
        "-pyI_lAbB9k_000309_000319 -QfOEoMWe5c_000014_000024 -r9l_G54K-w_000008_000018 "
        "-y2bC2OepiM_000035_000045 03SGPShRRzs_000003_000013",
        "-10xhPhBo0k_000498_000508 669C6dRoCc8_000000_000010 a8taFqSiigM_000040_000050",
    ),
}
CLASSES = list(REAL_IDS)
TRAIN, VAL = 8, 3


def video_ids(c: int) -> list[tuple[str, str]]:
    """(video id, split) of class ``c``: its train ids, then its val ids."""
    train, val = REAL_IDS[CLASSES[c]]
    return [(v, "train") for v in train.split()] + [(v, "val") for v in val.split()]


def authors_release(root, frames=6, dim=2048, skip=()):
    """Lists, Kinetics CSV and ``<root>/ResNet50/{train,val}/<id>.npy`` (float32, class centres)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(CLASSES), dim)).astype(np.float32) * 2
    lists, rows = {"train": [], "val": []}, []
    for c, label in enumerate(CLASSES):
        for video_id, split in video_ids(c):
            lists[split].append(f"{video_id} {c}")
            youtube_id, start, end = video_id[:-14], int(video_id[-13:-7]), int(video_id[-6:])
            rows.append((label, youtube_id, start, end, split))
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
    missing = video_ids(1)[2][0]
    root = authors_release(tmp_path, skip={missing})
    broken = root / "ResNet50" / "train" / f"{video_ids(2)[1][0]}.npy"
    np.save(broken, np.zeros((6, 1024), np.float32))  # another backbone's width
    table = annotations(root)
    out = tmp_path / "features" / "resnet50.h5"
    with pytest.raises(Exception, match="different widths"):
        convert_npy_features(root / "ResNet50", table, out, "resnet50", progress=False)
    np.save(broken, np.ones((6, 2048), np.float32))
    counts = convert_npy_features(root / "ResNet50", table, out, "resnet50", progress=False)
    assert counts == {"converted": len(table) - 1, "missing": 1}
    with open_feature_file(out) as handle:
        video = handle["videos"]["-bwYZwnwb8E_000013_000023"]
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


# --- issue 32: arrays that cannot be what they claim are refused -----------------------------


def npy_cli(capsys, root, features_dir, out) -> tuple[int, str]:
    from move.cli import main

    argv = ["npy-features", "--features-dir", features_dir, "--annotations",
            root / "kinetics.csv", "--backbone", "resnet50", "--out", out, "--quiet"]  # fmt: skip
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def resave(folder, change) -> None:
    for path in folder.rglob("*.npy"):
        np.save(path, change(np.load(path)))


def test_channels_first_arrays_are_refused_naming_the_file(tmp_path, capsys):
    """Cause 5: arrays saved [2048, frames] were taken as 2048 frames of 6-wide features."""
    root = authors_release(tmp_path / "release")
    resave(root / "ResNet50", lambda array: array.T)
    out = tmp_path / "features" / "minikinetics" / "resnet50.h5"
    code, err = npy_cli(capsys, root, root / "ResNet50", out)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "is [2048, 6], features by frames (channels first)" in err
    assert "save the arrays as [frames, 2048] (np.save(path, array.T))" in err
    assert str(root / "ResNet50") in err and not out.exists()


def test_arrays_of_another_width_than_the_backbones_are_refused(tmp_path, capsys):
    """Cause 5: arrays of one width, but not ResNet's 2048, are not resnet50's features; the
    message names the dataset's config key, not VideoLT's (a weak spot)."""
    root = authors_release(tmp_path / "release", dim=1024)
    out = tmp_path / "features" / "minikinetics" / "resnet50.h5"
    code, err = npy_cli(capsys, root, root / "ResNet50", out)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "is [6, 1024]: 1024 features a frame, not resnet50's 2048" in err
    assert "'datasets.minikinetics.features.resnet50'" in err and "videolt" not in err
    assert not out.exists()


def test_an_id_found_twice_is_refused_naming_both_files(tmp_path, capsys):
    """Cause 6: given the root of ResNet50/ and ResNet101/, one id has two files; 4e1bccc took
    ResNet101's (sorted first) as resnet50's without a word."""
    root = authors_release(tmp_path / "release")
    for path in (root / "ResNet50").rglob("*.npy"):
        twin = root / "ResNet101" / path.relative_to(root / "ResNet50")
        twin.parent.mkdir(parents=True, exist_ok=True)
        np.save(twin, np.load(path) * 2)
    out = tmp_path / "features" / "minikinetics" / "resnet50.h5"
    code, err = npy_cli(capsys, root, root, out)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert " has two feature files, " in err and "ResNet101" in err and "ResNet50" in err
    assert "point 'datasets.minikinetics.features.resnet50' at the folder of one" in err
    assert not out.exists()


def test_values_beyond_float16_are_a_logged_failure_not_inf(tmp_path, capsys):
    """Weak spot: a finite array whose values overflow float16 became inf silently."""
    root = authors_release(tmp_path / "release")
    video = video_ids(0)[0][0]
    path = root / "ResNet50" / "train" / f"{video}.npy"
    array = np.load(path)
    array[2, 7] = 1e6
    np.save(path, array)
    out = tmp_path / "features" / "minikinetics" / "resnet50.h5"
    code, err = npy_cli(capsys, root, root / "ResNet50", out)
    assert code == 0, err
    failures = pd.read_csv(out.with_name("resnet50.failures.csv"), keep_default_na=False)
    reason = failures.set_index("video_id").reason[video]
    assert reason == "values up to 1e+06 overflow float16: store them as float32 (extract.dtype)"
    with open_feature_file(out) as handle:
        assert video not in handle["videos"]
        assert all(np.isfinite(handle["videos"][v][()]).all() for v in handle["videos"])
