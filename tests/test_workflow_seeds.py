"""The paper's tables over seeds through the real Snakefile: two seeds, two (tiny) backbones, the
paper table's cells equal to a hand computation from the per-seed results, Table 4's rows, and a
switch of the configured backbone retraining nothing of the other one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.snakemake_runs import TINY_CONFIG, merged_config, planned_jobs, snakemake

SEEDS_CONFIG = {
    **TINY_CONFIG,
    "seeds": [0, 1],
    "backbones": ["resnet50", "resnet101"],
    "paper_table": {"rows": ["plain", "move"]},
}


@pytest.mark.slow
def test_paper_and_ablation_tables_over_two_seeds_and_two_backbones(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(merged_config(SEEDS_CONFIG)))
    done = snakemake(tmp_path, "results/demo_paper.md", "results/demo_ablation.md")
    assert done.returncode == 0, done.stderr[-3000:]

    runs = tmp_path / "results/demo"
    for variant in ("plain", "move"):
        for backbone in ("resnet50", "resnet101"):
            finals = [
                json.loads((runs / f"{backbone}/ir0.5/{variant}/seed{seed}.json").read_text())
                for seed in (0, 1)
            ]
            assert [run["seed"] for run in finals] == [0, 1]
            assert {run["backbone"] for run in finals} == {backbone}
            values = np.array([run["final"]["mAP"] for run in finals])
            table = pd.read_csv(tmp_path / "results/demo_paper.csv")
            cell = table[
                (table.variant == variant)
                & (table.backbone == backbone)
                & (table.protocol == "final")
                & (table.metric == "mAP")
            ].iloc[0]
            assert cell["mean"] == pytest.approx(values.mean())
            assert cell["std"] == pytest.approx(values.std(ddof=1))
            assert cell["n"] == 2
    markdown = (tmp_path / "results/demo_paper.md").read_text()
    assert "— resnet50" in markdown and "— resnet101" in markdown and "Seeds 0, 1" in markdown

    ablation = (tmp_path / "results/demo_ablation.md").read_text()
    rows = [line.split(" | ")[0] for line in ablation.splitlines() if line.startswith("| (")]
    assert rows == [f"| ({row})" for row in "abcdefg"] * 2  # best and final
    assert "# demo (resnet101)" in ablation  # the ablation backbone: ResNet-101, as Table 4
    # rows (a) and (g) are the paper table's plain and move runs, trained once for both
    trained = sorted(p.relative_to(runs).as_posix() for p in runs.rglob("seed*.json"))
    assert len(trained) == 2 * 2 * 2 + 5 * 2, trained  # + (b)-(f): plain_agg and four ablations

    # the configured backbone switched: its main result is a copy of a run already trained
    switched = merged_config({**SEEDS_CONFIG, "backbone": "resnet101"})
    config.write_text(yaml.safe_dump(switched))
    plan = snakemake(tmp_path, "-n", "results/demo_ir0.5.json", "results/demo_paper.md")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_jobs(plan.stdout) == {"main_result": 1}, plan.stdout[-3000:]
