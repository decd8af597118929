"""End to end: the real Snakefile on a tiny synthetic dataset, caching and re-run rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

TINY_CONFIG = {
    "demo": {
        "classes": 4,
        "train_per_class": 6,
        "val_per_class": 3,
        "frames": 8,
        "size": 32,
        "fps": 8,
        "seed": 1,
    },
    "datasets": {
        "demo": {
            "imbalance_ratios": [0.5],
            "max_per_class": 6,
            "groups": {"head_min": 5, "tail_max": 3},
            "extract": {"frames": 4, "resize": 40, "crop": 32, "batch_size": 16},
            "train": {
                "epochs": 3,
                "batch_size": 8,
                "lr": 0.001,
                "lr_milestones": [2],
                "frames_train": 4,
                "frames_test": 4,
                "eval_every": 1,
                "heads": 2,
                "d_k": 16,
                "d_v": 16,
                "clusters": 4,
                "codebook_dim": 32,
                "hidden_dim": 32,
                "num_workers": 0,
                "device": "cpu",
            },
        }
    },
    "extract": {"num_workers": 0, "device": "cpu"},
}


def merged_config(overrides: dict) -> dict:
    """The shipped config.yaml with ``overrides`` merged in (dicts recursively)."""

    def merge(base: dict, extra: dict) -> dict:
        out = dict(base)
        for key, value in extra.items():
            out[key] = merge(base[key], value) if isinstance(value, dict) and key in base else value
        return out

    return merge(yaml.safe_load((REPO / "config.yaml").read_text()), overrides)


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, "--cores", "2", *args], capture_output=True, text=True, env=env, cwd=workdir
    )


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names in a dry run's 'Job stats' table."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats")) + 3
    rules = set()
    for line in lines[start:]:
        name = line.split()[0] if line.strip() else ""
        if not name or name == "total":
            break
        rules.add(name)
    return rules


@pytest.mark.slow
def test_demo_workflow_end_to_end_and_caching(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(merged_config(TINY_CONFIG)))

    first = snakemake(tmp_path, "results/demo_ir0.5.json")
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((tmp_path / "results/demo_ir0.5.json").read_text())
    final = results["final"]
    assert 0.0 <= final["mAP"] <= 1.0
    assert {"head_mAP", "medium_mAP", "tail_mAP", "top1", "top5"} <= set(final)
    assert results["settings"]["epochs"] == 3
    assert (tmp_path / "results/demo_ir0.5.per_class.csv").is_file()
    assert (tmp_path / "features/demo/resnet50.h5").is_file()
    split = (tmp_path / "splits/demo_ir0.5.csv").read_text().splitlines()
    assert split[0] == "video_id,class_index,label,split"

    again = snakemake(tmp_path, "results/demo_ir0.5.json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr

    changed = merged_config({**TINY_CONFIG, "split": {"selection": "random"}})
    config.write_text(yaml.safe_dump(changed))
    plan = snakemake(tmp_path, "-n", "results/demo_ir0.5.json")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_rules(plan) == {"split", "train", "main_result"}


def test_unset_kinetics_path_stops_with_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    result = snakemake(tmp_path, "results/minikinetics_ir0.01.json")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: config key 'datasets.minikinetics.videos' is not set: point it at your video "
        "folder (edit config.yaml or pass --config)"
    ]


def test_invalid_config_stops_naming_the_key(tmp_path):
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(merged_config({"train": {"method": "magic"}}))
    )
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "config key 'train.method': 'magic' is not allowed" in result.stderr
