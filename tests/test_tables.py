"""Table-3-style methods table: variants, the table itself, and the workflow target that makes it."""

import json
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from move.errors import MoveError
from move.reporting.tables import methods_table, to_markdown, write_methods_table
from move.training.methods import variant_settings
from tests.conftest import tiny_train

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def _fake_result(path, m, variant, seed=0):
    final = {
        "mAP": m,
        "head_mAP": m + 0.1,
        "medium_mAP": m,
        "tail_mAP": None,
        "top1": 0.5,
        "top5": 0.9,
    }
    recorded = variant_settings(variant)
    path.write_text(
        json.dumps(
            recorded
            | {"final": final | {"epoch": 10}, "best": {"mAP": m + 0.01, "epoch": 5}, "seed": seed}
        )
    )
    return path


def test_methods_table_markdown_and_csv(tmp_path):
    results = {
        "plain": _fake_result(tmp_path / "a.json", 0.4, "plain"),
        "plain_agg": _fake_result(tmp_path / "b.json", 0.5, "plain_agg"),
        "move": _fake_result(tmp_path / "c.json", 0.6, "move"),
    }
    table = write_methods_table(results, tmp_path / "t.md", tmp_path / "t.csv", "demo")
    assert table.method.tolist() == ["Baseline", "Baseline", "MOVE (ours)"]
    assert table["agg"].tolist() == ["✗", "✓", "✓"]
    on_disk = pd.read_csv(tmp_path / "t.csv")
    assert on_disk.mAP.tolist() == [0.4, 0.5, 0.6] and on_disk.best_epoch.tolist() == [5] * 3
    text = (tmp_path / "t.md").read_text()
    assert text.startswith("demo") and "| MOVE (ours) | ✓ | move | 0.600 | 0.700 |" in text
    assert "| - |" in text  # a group without classes
    assert to_markdown(methods_table(results)).count("\n") == 5
    with pytest.raises(MoveError, match="train method 'eql'"):
        methods_table({"eql": tmp_path / "missing.json"})
    with pytest.raises(MoveError, match="holds variant 'plain_agg', not 'plain'"):
        methods_table({"plain": results["plain_agg"]})


def test_a_variant_given_twice_is_refused_naming_both_files(tmp_path, capsys):
    from move.cli import main

    first = _fake_result(tmp_path / "a.json", 0.4, "plain")
    second = _fake_result(tmp_path / "b.json", 0.5, "plain")
    out = [f"plain={first}", f"plain={second}", "--out-md", str(tmp_path / "t.md")]
    assert main(["table", *out, "--out-csv", str(tmp_path / "t.csv")]) == 1
    error = capsys.readouterr().err
    assert "'plain' is given twice" in error and "a.json" in error and "b.json" in error
    assert not (tmp_path / "t.md").exists()


@pytest.mark.slow
def test_workflow_table_target_runs_every_method(tmp_path):
    """`results/<dataset>_table.md` trains each configured method once; the default target stays."""
    from move.datasets.synthetic import SyntheticSpec, make_synthetic_features

    for item in ("Snakefile", "workflow", "envs"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, tmp_path / item)
    (tmp_path / "videos").mkdir()
    (tmp_path / "annotations.csv").write_text("label,youtube_id,time_start,time_end,split\n")
    time.sleep(0.05)
    spec = SyntheticSpec(classes=4, n_max=12, test_per_class=3, frames=6, dim=16, seed=0)
    (tmp_path / "features" / "syn").mkdir(parents=True)
    (tmp_path / "splits").mkdir()
    make_synthetic_features(
        tmp_path / "features/syn/resnet50.h5", tmp_path / "splits/syn_ir0.1.csv", spec
    )
    (tmp_path / "splits/syn_ir0.1.class_counts.csv").write_text("x\n")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    tiny = tiny_train(epochs=2, frames_train=6, frames_test=6, feature_dim=16, num_workers=0)
    config["datasets"] |= {
        "syn": {
            "videos": "videos",
            "annotations": "annotations.csv",
            "imbalance_ratios": [0.1],
            "max_per_class": 12,
            "groups": {"head_min": 10, "tail_max": 3},
            "train": tiny,
        }
    }
    config["table"] = {"methods": ["plain", "cbs_agg", "move"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--rerun-triggers", "mtime", "--"]
    run = subprocess.run(
        command + ["results/syn_table.md", "results/syn_ir0.1.json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/syn_table.csv")
    assert table.variant.tolist() == ["plain", "cbs_agg", "move"]
    assert table["agg"].tolist() == ["✗", "✓", "✓"]
    assert "| Baseline | ✗ | plain |" in (tmp_path / "results/syn_table.md").read_text()
    default = json.loads((tmp_path / "results/syn_ir0.1.json").read_text())
    move = json.loads((tmp_path / "results/syn/resnet50/ir0.1/move/seed0.json").read_text())
    assert default["settings"]["method"] == "move" and default["final"] == move["final"]
    assert not any((tmp_path / "features").rglob("*.tmp"))


def test_config_has_table4_switches_and_methods_and_rejects_unknown_ones():
    from move.config import validate_config
    from move.training.settings import ABLATION_ROWS, TrainSettings

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(config)
    switches = {key for row in ABLATION_ROWS.values() for key in row if key != "move"}
    from move.config import load_schema

    rules = load_schema()["$defs"]["train"]["properties"]  # each a switch, on by default (MOVE)
    assert all(rules[key]["default"] in (True, "move") for key in switches), switches
    move_switches = {key for row in ABLATION_ROWS.values() for key in row.get("move", {})}
    assert move_switches == {"dfs", "extrapolation", "interpolation"}
    assert "table" not in config  # every registered variant, in the paper's order
    TrainSettings.from_dict(config["train"])  # the config section is valid training settings
    for row in ABLATION_ROWS.values():  # every row validates as a config train section
        validate_config({**config, "train": {**config["train"], **row}})
    with pytest.raises(MoveError, match="table.methods"):
        validate_config({**config, "table": {"methods": ["focal"]}})
    with pytest.raises(MoveError, match="train.method"):
        validate_config({**config, "train": {**config["train"], "method": "focal"}})
