"""The shipped config means the paper's experiment: named weights, the authors' lists, by default.

With only the video folder set, `results/minikinetics_ir0.01.json` plans the whole pipeline;
random weights on a real dataset stop before anything runs; and the splits of every IR come
from the lists alone, here served in the authors' formats by a local HTTP server.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.snakemake_runs import planned_jobs

NAMES = ["abseiling", "air drumming", "archery", "arm wrestling", "baking cookies", "barbequing"]
TRAIN_COUNTS = [
    12,
    30,
    8,
    30,
    100,
    20,
]  # by class index; a tie (30) broken by name; n_max 100 keeps IR 0.01 >= 1 video


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real Snakefile in ``workdir`` with an empty torch cache there (and ``env`` set)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TORCH_HOME": str(workdir / "torch"),
        **(env or {}),
    }
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, "--cores", "2", *args], capture_output=True, text=True, env=env, cwd=workdir
    )


def videos_only(tmp_path: Path) -> str:
    """The shipped config.yaml in ``tmp_path``; returns the --config that sets the video folder."""
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    (tmp_path / "kinetics400").mkdir()
    return f"datasets={{minikinetics: {{videos: {tmp_path / 'kinetics400'}}}}}"


def test_dry_run_plans_the_whole_pipeline_with_only_the_videos_set(tmp_path):
    dry_run = ("-n", "results/minikinetics_ir0.01.json", "--config", videos_only(tmp_path))
    plan = snakemake(tmp_path, *dry_run)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_jobs(plan.stdout) == {
        "fetch_list": 4,  # train.lst, val.lst, kinetics_train.csv, kinetics_val.csv
        "list_annotations": 1,
        "fetch_weights": 1,  # imagenet ResNet-50 into torch.hub's cache
        "extract_shard": 1,
        "merge_features": 1,
        "missing": 1,
        "split": 1,
        "train": 1,  # the configured method, once: the main result is a copy of its run
        "main_result": 1,
    }
    assert not (tmp_path / "data").exists()  # a dry run fetches nothing
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-19c8e357.pth"
    assert str(cached) in plan.stdout
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"placed by hand")  # already cached: no download planned
    assert "fetch_weights" not in planned_jobs(snakemake(tmp_path, *dry_run).stdout)


def test_random_weights_on_minikinetics_stop_before_extraction(tmp_path):
    config = videos_only(tmp_path)
    result = snakemake(
        tmp_path,
        "results/minikinetics_ir0.01.json",
        "--config",
        config,
        "extract={weights: {resnet50: none}}",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: config key 'extract.weights.resnet50' is 'none': a randomly initialised resnet50 "
        "gives meaningless features; use imagenet or a checkpoint, or set "
        "datasets.minikinetics.extract.allow_random_weights: true"
    ]
    assert not (tmp_path / "data").exists() and not (tmp_path / "features").exists()


def write_authors_files(folder: Path) -> None:
    """Lists and Kinetics CSVs in the authors' formats: `<id> <class_index>`; CSVs with is_cc."""
    train, val, rows = [], [], []
    for index, (name, count) in enumerate(zip(NAMES, TRAIN_COUNTS, strict=True)):
        for i in range(count + 2):
            youtube_id, start = f"{name[:3]}-{index}_{i:03d}", 10 * i
            video_id = f"{youtube_id}_{start:06d}_{start + 10:06d}"
            split = "train" if i < count else "val"
            (train if split == "train" else val).append(f"{video_id} {index}\n")
            rows.append((name, youtube_id, start, start + 10, split, i % 2))
    (folder / "train.lst").write_text("".join(train))
    (folder / "val.lst").write_text("".join(val))
    table = pd.DataFrame(
        rows, columns=["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    )
    for split in ("train", "val"):
        table[table.split == split].to_csv(folder / f"kinetics_{split}.csv", index=False)


@pytest.mark.slow
def test_list_splits_of_every_ir_need_no_video_or_feature(tmp_path, local_server):
    write_authors_files(local_server.folder)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    entry = config["datasets"]["minikinetics"]
    assert entry["videos"] is None  # no videos anywhere
    entry["lists"] = {"train": local_server.url("train.lst"), "val": local_server.url("val.lst")}
    entry["kinetics_annotations"] = [
        local_server.url(f"kinetics_{s}.csv") for s in ("train", "val")
    ]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    result = snakemake(tmp_path, "list_splits")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "features").exists()
    order = sorted(range(len(NAMES)), key=lambda c: (-TRAIN_COUNTS[c], NAMES[c]))
    n_max, last = max(TRAIN_COUNTS), len(NAMES) - 1
    for ir in entry["imbalance_ratios"]:
        counts = pd.read_csv(tmp_path / f"splits/lists/minikinetics_ir{ir}.class_counts.csv")
        assert counts.label.tolist() == [NAMES[c] for c in order]
        expected = [
            min(math.floor(n_max * ir ** (rank / last)), TRAIN_COUNTS[c])
            for rank, c in enumerate(order)
        ]
        assert counts["count"].tolist() == expected and counts.lost.sum() == 0
        split = pd.read_csv(tmp_path / f"splits/lists/minikinetics_ir{ir}.csv")
        assert (split.split == "test").sum() == 2 * len(NAMES)
    assert sorted(local_server.requests) == sorted(
        ["/train.lst", "/val.lst", "/kinetics_train.csv", "/kinetics_val.csv"]
    )  # each fetched once for all four IRs


@pytest.mark.slow
def test_named_weights_are_fetched_once_for_all_shards(tmp_path, local_server):
    """Rule fetch_weights downloads `imagenet` once; both shard jobs load it and record its hash."""
    import h5py
    import torchvision

    from move.files import file_sha256
    from tests.conftest import save_with_hash_name

    weights = save_with_hash_name(
        torchvision.models.resnet50(weights=None).state_dict(), local_server.folder, "resnet50"
    )
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"].update(classes=3, train_per_class=3, val_per_class=1, frames=4, size=32)
    config["datasets"]["demo"]["extract"].update(
        weights={"resnet50": "imagenet"}, frames=2, resize=32, crop=32, num_workers=0,
        device="cpu", shards=2,
    )  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {"MOVE_WEIGHTS_URLS": f"resnet50:imagenet={local_server.url(weights.name)}"}
    result = snakemake(tmp_path, "features/demo/resnet50.h5", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert local_server.requests == [f"/{weights.name}"]
    assert (tmp_path / "torch/hub/checkpoints" / weights.name).is_file()
    with h5py.File(tmp_path / "features/demo/resnet50.h5", "r") as handle:
        assert handle.attrs["weights"] == "imagenet"
        assert handle.attrs["weights_sha256"] == file_sha256(weights)
        assert len(handle["videos"]) == 12
