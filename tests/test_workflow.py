"""End to end: the real Snakefile on a tiny synthetic dataset, caching and re-run rules."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO
from tests.snakemake_runs import TINY_CONFIG, merged_config, planned_rules, snakemake


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
        "folder, or set kinetics_mirror.path_lists to fetch them (edit config.yaml or pass "
        "--config)"
    ]


def test_invalid_config_stops_naming_the_key(tmp_path):
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(merged_config({"train": {"method": "magic"}}))
    )
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "config key 'train.method': 'magic' is not allowed" in result.stderr
