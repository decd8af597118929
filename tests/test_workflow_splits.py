"""Workflow: the imbalance table gathers every IR; changing only the IR never reruns extraction."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.snakemake_runs import planned_jobs

REPO = Path(__file__).resolve().parent.parent


def tiny_config(ratios):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"].update(classes=3, train_per_class=4, val_per_class=2, frames=4, size=32)
    demo = config["datasets"]["demo"]
    demo.update(imbalance_ratios=ratios, max_per_class=4, groups={"head_min": 3, "tail_max": 1})
    demo["extract"].update(frames=2, resize=32, crop=32, batch_size=8, num_workers=0)
    demo["train"] = {
        "epochs": 1, "batch_size": 4, "frames_train": 2, "frames_test": 2, "eval_every": 1,
        "clusters": 2, "d_k": 8, "d_v": 8, "hidden_dim": 16, "codebook_dim": 8,
        "num_workers": 0, "device": "cpu",
    }  # fmt: skip
    return config


def snakemake(workdir: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(
        ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--cores", "1", *args],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.mark.slow
def test_changing_only_the_ir_reruns_split_and_train_not_extraction(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config([0.5])))
    snakemake(tmp_path, "results/demo_all.md")
    table = (tmp_path / "results" / "demo_all.md").read_text()
    assert "IR 0.5 AP" in table and "MOVE" in table
    assert (tmp_path / "splits" / "demo_missing.csv").is_file()
    assert "Nothing to be done" in snakemake(tmp_path, "-n", "results/demo_all.md")

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config([0.25])))
    jobs = planned_jobs(snakemake(tmp_path, "-n", "results/demo_all.md"))
    assert jobs == {"split": 1, "train": 1, "main_result": 1, "imbalance_table": 1}
