"""Targets are checked at planning: unknown datasets and backbones, imbalance ratios outside (0, 1]
or spelt another way, and a dataset with its own split (VideoLT) asked for at an IR stop in one
line before any job."""

import subprocess
import sys

import pytest
import yaml

from move.errors import MoveError
from move.targets import canonical_ratio, check_targets
from move.validation import nested_yaml
from tests.conftest import REPO

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("results/foo_ir0.1.json", "dataset 'foo' is not configured"),
        ("results/foo_table.md", "dataset 'foo' is not configured"),
        ("splits/lists/foo_ir0.1.csv", "dataset 'foo' is not configured"),
        ("figures/foo/curves.png", "dataset 'foo' is not configured"),
        ("results/videolt_ir0.1.json", "videolt comes with its own split, no imbalance ratios"),
        ("results/demo_ir0.10.json", "write the imbalance ratio as 0.1 (results/demo_ir0.1.json)"),
        ("results/demo/resnet50/ir1e-1/move/seed0.json", "write the imbalance ratio as 0.1"),
        ("results/demo/resnet18/ir0.1/move/seed0.json", "unknown backbone 'resnet18'"),
        (
            "results/videolt/resnet50/ir0.1/move/seed0.pt",
            "videolt comes with its own split, no imbalance ratios",
        ),
        ("results/videolt_table.md", "videolt comes with its own split, no imbalance ratios"),
        ("results/demo/resnet50/move/seed0.json", "a run of demo names its imbalance ratio"),
        ("results/foo_paper.md", "dataset 'foo' is not configured"),
        ("results/foo_extended.md", "dataset 'foo' is not configured"),
        ("splits/demo_ir1.5.csv", "imbalance ratio 1.5 is outside (0, 1]"),
        ("results/demo_ir0.json", "imbalance ratio 0 is outside (0, 1]"),
        ("results/demo_irx.json", "imbalance ratio 'x' is not a number"),
        ("features/demo/resnet18.h5", "unknown backbone 'resnet18'"),
        ("results/videolt_r18.json", "unknown backbone 'r18'"),
    ],
)
def test_a_bad_target_is_one_line_naming_it_and_the_fix(target, expected):
    with pytest.raises(MoveError) as error:
        check_targets(["--cores", "2", target], CONFIG)
    assert expected in str(error.value) and target in str(error.value)
    assert "\n" not in str(error.value)


def test_documented_targets_and_other_words_pass():
    check_targets(
        ["results/demo_ir0.1.json", "results/minikinetics_ir0.01.json", "results/demo_table.md",
         "results/demo/resnet101/ir0.1/cb_loss_agg/seed2.json", "results/videolt_tsm_resnet50.json",
         "results/videolt/resnet101/ablation_b/seed1.pt", "results/minikinetics_paper.md",
         "results/videolt_paper.csv", "results/videolt_ablation.md", "results/demo_ablation.md",
         "splits/demo_ir0.1_seed1.csv", "results/demo_extended.md", "results/videolt_extended.csv",
         "features/minikinetics/resnet101.h5", "features/demo/resnet50.shard0of2.h5",
         "splits/lists/minikinetics_ir0.05.csv", "figures/demo_ir0.1/attention.png",
         "figures/config.yaml", "report_demo", "list_splits", "--profile", "workflow/profiles/slurm",
         "config.yaml", "-n"],
        CONFIG,
    )  # fmt: skip
    assert canonical_ratio("0.010") == "0.01" and canonical_ratio("1") == "1.0"


def test_nested_numbers_from_the_command_line_get_a_yaml_line_to_use():
    assert nested_yaml("train.epochs", "5") == "train: {epochs: 5}"
    assert nested_yaml("datasets.demo.max_per_class", "6") == "datasets: {demo: {max_per_class: 6}}"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("results/videolt_ir0.1.json", "videolt comes with its own split, no imbalance ratios"),
        ("results/foo_ir0.1.json", "dataset 'foo' is not configured"),
    ],
)
def test_snakemake_plans_nothing_for_a_bad_target_and_says_why_in_one_line(
    target, expected, tmp_path
):
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", target, "-n", "-s", str(REPO / "Snakefile"), "-d",
         str(tmp_path), "--configfile", str(REPO / "config.yaml")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: target") and expected in lines[-1], done.stderr
    assert "Traceback" not in done.stderr


LEAK = "weights were trained on Kinetics-400's labelled train videos"


def test_kinetics_trained_weights_on_a_kinetics_subset_are_refused_unless_allowed():
    from move.extraction.backbones import kinetics_trained
    from move.planning import extract_weights

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    with pytest.raises(MoveError, match=LEAK) as error:
        extract_weights(config, "minikinetics", "tsm_resnet50")
    assert "allow_kinetics_trained_weights: true" in str(error.value)
    assert "\n" not in str(error.value)
    assert extract_weights(config, "minikinetics", "resnet50") == "imagenet"
    config["datasets"]["minikinetics"]["extract"] = {"allow_kinetics_trained_weights": True}
    assert extract_weights(config, "minikinetics", "tsm_resnet50") == "kinetics"
    assert kinetics_trained("tsm_resnet50", "kinetics") and not kinetics_trained(
        "resnet50", "imagenet"
    )


@pytest.mark.parametrize(
    "target",
    [
        "features/minikinetics/tsm_resnet50.h5",
        "results/minikinetics/tsm_resnet50/ir0.01/move/seed0.json",
    ],
)
def test_snakemake_refuses_the_kinetics_leak_at_planning(target, tmp_path):
    (tmp_path / "videos").mkdir()
    paths = tmp_path / "paths.yaml"
    paths.write_text(
        yaml.safe_dump({"datasets": {"minikinetics": {"videos": str(tmp_path / "videos")}}})
    )
    command = [sys.executable, "-m", "snakemake", target, "-n", "-s", str(REPO / "Snakefile"), "-d",
               str(tmp_path), "--configfile", str(REPO / "config.yaml"), str(paths)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: tsm_resnet50 'kinetics'") and LEAK in lines[-1], done.stderr
    allowed = {
        "minikinetics": {
            "videos": str(tmp_path / "videos"),
            "extract": {"allow_kinetics_trained_weights": True},
        }
    }
    paths.write_text(yaml.safe_dump({"datasets": allowed}))
    assert subprocess.run(command, capture_output=True, text=True, cwd=tmp_path).returncode == 0
