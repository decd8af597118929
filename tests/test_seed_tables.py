"""The tables over seeds: the paper's table (Table 3, Tables 1-2) and Table 4's ablation, each cell
the mean ± std over seeds with the paper's number beside, checked against a hand computation;
runs of different settings are refused in one cell."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from move.reporting.paper import PAPER_ABLATION, paper_ablation, paper_result
from move.training.settings import ABLATION_ROWS
from tests.conftest import run_move

METRICS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")


def settings_of(switches: dict) -> dict:
    """Settings as results record them, from a config-shaped train section (ABLATION_ROWS)."""
    settings = {"method": switches["method"], "aggregators": switches.get("aggregators", True)}
    settings |= {"lr": 0.0001, "epochs": 100, "seed": 0, "num_workers": 2, "device": "cuda"}
    settings["model"] = {
        "self_attentive": switches.get("self_attentive", True),
        "codebook_attentive": switches.get("codebook_attentive", True),
    }
    if switches["method"] == "move":
        settings["move"] = {"dfs": True, "extrapolation": True, "interpolation": True}
        settings["move"] |= switches.get("move", {})
    return settings


def write_run(path, switches, seed, values, dataset="minikinetics", backbone="resnet50", ir=0.01):
    """A results JSON as `move train` writes it, with ``values`` (final; best = final + 0.01)."""
    settings = settings_of(switches) | {"seed": seed}
    final = dict(zip(METRICS, values, strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "method": settings["method"],
                "aggregators": settings["aggregators"],
                "dataset": dataset,
                "backbone": backbone,
                "imbalance_ratio": ir,
                "seed": seed,
                "final": final | {"epoch": 100},
                "best": {k: v + 0.01 for k, v in final.items()} | {"epoch": 95},
                "settings": settings,
                "groups": {"head_min": 301, "tail_max": 40},
                "n_classes": 200,
                "n_test": 4999,
                "features": {"path": f"features/{dataset}/{backbone}.h5", "sha256": backbone},
            }
        )
    )
    return path


VARIANTS = {"plain": {"method": "plain", "aggregators": False}, "move": {"method": "move"}}


@pytest.fixture
def table_3_runs(tmp_path):
    """Two rows × two backbones × two IRs × three seeds of MiniKinetics200, random metrics."""
    rng = np.random.default_rng(0)
    paths, values = [], {}
    for variant, switches in VARIANTS.items():
        for backbone in ("resnet50", "resnet101"):
            for ir in (0.01, 0.1):
                for seed in (0, 1, 2):
                    metrics = rng.uniform(0.3, 0.7, size=6)
                    values[variant, backbone, ir, seed] = metrics
                    path = (
                        tmp_path
                        / f"results/minikinetics/{backbone}/ir{ir}/{variant}/seed{seed}.json"
                    )
                    paths.append(write_run(path, switches, seed, metrics, backbone=backbone, ir=ir))
    return tmp_path, paths, values


def paper_table(tmp_path, paths, *options):
    md, csv = tmp_path / "paper.md", tmp_path / "paper.csv"
    done = run_move(
        "paper-table", *map(str, paths), *options, "--out-md", str(md), "--out-csv", str(csv)
    )
    return done, md, csv


def test_each_cell_is_the_mean_and_std_over_seeds_with_the_paper_beside(table_3_runs):
    tmp_path, paths, values = table_3_runs
    done, md, csv = paper_table(tmp_path, paths, "--rows", "plain", "move")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(csv)
    assert len(table) == 2 * 2 * 2 * 2 * 2  # variants × backbones × IRs × (AP, ACC) × protocols
    for (variant, backbone, ir, protocol, metric), cell in table.groupby(
        ["variant", "backbone", "imbalance_ratio", "protocol", "metric"]
    ):
        column = METRICS.index(metric)
        by_seed = [values[variant, backbone, ir, seed][column] for seed in (0, 1, 2)]
        by_seed = np.array(by_seed) + (0.01 if protocol == "best" else 0)
        row = cell.iloc[0]
        assert row["mean"] == pytest.approx(by_seed.mean())
        assert row["std"] == pytest.approx(by_seed.std(ddof=1))
        assert (row["n"], row["seeds"]) == (3, "0 1 2")
        method, aggregators = {"plain": ("plain", False), "move": ("move", True)}[variant]
        paper = paper_result("minikinetics", backbone, method, aggregators, ir)[metric]
        assert row["paper"] == pytest.approx(paper)
        assert row["difference_in_std"] == pytest.approx(
            (by_seed.mean() - paper) / by_seed.std(ddof=1)
        )
        assert len(row["files"].split()) == 3 and f"/{variant}/seed2.json" in row["files"]
    # the markdown cell of MOVE, ResNet-101, IR 0.01, AP, final epoch, as the paper shows it
    final = np.array([values["move", "resnet101", 0.01, seed][0] for seed in (0, 1, 2)])
    mean, std = final.mean(), final.std(ddof=1)
    text = f"{mean:.3f} ± {std:.3f} (0.593; {(mean - 0.593) / std:+.1f}σ)"
    lines = md.read_text().splitlines()
    block = lines[
        lines.index("## final: the last epoch of each run (the honest headline) — resnet101") :
    ]
    header = "| LT-Methods | Agg | IR 0.01 AP | IR 0.01 ACC | IR 0.1 AP | IR 0.1 ACC |"
    assert block[2] == header
    move_row = next(line for line in block if line.startswith("| MOVE (ours) | ✓ |"))
    assert move_row.split(" | ")[2] == text
    assert "Seeds 0, 1, 2" in lines[2]
    assert lines[0] == "# minikinetics: the paper's table over seeds"


def test_a_table_with_later_baselines_says_so_in_its_heading(tmp_path):
    """The extended table (paper rows, then the baselines since 2020) is not titled the paper's."""
    paths = [
        write_run(tmp_path / f"{method}.json", {"method": method}, 0, [0.5] * 6)
        for method in ("plain", "crt")
    ]
    done, md, _ = paper_table(tmp_path, paths, "--rows", "plain_agg", "crt_agg")
    assert done.returncode == 0, done.stderr
    heading = md.read_text().splitlines()[0]
    assert (
        heading
        == "# minikinetics: the paper's table and the long-tail baselines since 2020 over seeds"
    )


def test_a_cell_refuses_runs_of_other_settings_and_repeated_seeds(table_3_runs):
    tmp_path, paths, _ = table_3_runs
    moved = paths[1]
    data = json.loads(moved.read_text())
    data["settings"]["lr"] = 0.001
    moved.write_text(json.dumps(data))
    done, md, _ = paper_table(tmp_path, paths)
    assert done.returncode == 1 and "settings.lr (0.0001 vs 0.001)" in done.stderr
    assert str(paths[0]) in done.stderr and str(moved) in done.stderr and not md.exists()
    data["settings"]["lr"] = 0.0001
    data["settings"]["num_workers"] = 0  # not a setting of the result: allowed
    moved.write_text(json.dumps(data))
    copy = tmp_path / "again.json"
    copy.write_text(paths[0].read_text())
    done, _, _ = paper_table(tmp_path, [*paths, copy])
    assert done.returncode == 1 and "same run (seed 0)" in done.stderr
    assert paper_table(tmp_path, paths)[0].returncode == 0


def test_one_seed_has_no_spread_and_shows_the_raw_difference(tmp_path):
    path = write_run(tmp_path / "r.json", VARIANTS["move"], 0, [0.58, 0.7, 0.6, 0.5, 0.5, 0.8])
    done, md, _ = paper_table(tmp_path, [path])
    assert done.returncode == 0, done.stderr
    assert "| MOVE (ours) | ✓ | 0.580 (0.570; +0.010) | 0.500 (0.509; -0.009) |" in md.read_text()


def test_videolt_table_has_the_group_columns_of_tables_1_and_2(tmp_path):
    paths = [
        write_run(
            tmp_path / f"{seed}.json",
            VARIANTS["plain"],
            seed,
            [0.5] * 6,
            "videolt",
            "tsm_resnet50",
            None,
        )
        for seed in (0, 1)
    ]
    done, md, _ = paper_table(tmp_path, paths)
    assert done.returncode == 0, done.stderr
    text = md.read_text()
    assert "| LT-Methods | Agg | All | H | M | T | A@1 | A@5 |" in text
    # Table 2 prints no accuracy for the frame-wise baseline: no paper number there
    assert "| Baseline | ✗ | 0.500 ± 0.000 (0.565; -0.065) | 0.500 ± 0.000 (0.757; -0.257)" in text
    assert text.count("0.500 ± 0.000 |") >= 2


def test_table_4_is_in_move_paper():
    """Table 4 of the paper (ResNet-101, VideoLT): rows (a), (d) and (g) are Table 1's baseline
    without and with aggregators and MOVE on ResNet-101."""
    assert PAPER_ABLATION["b"] == dict(
        zip(METRICS, (0.681, 0.795, 0.719, 0.595, 0.706, 0.866), strict=True)
    )
    assert PAPER_ABLATION["e"]["tail_mAP"] == 0.632 and PAPER_ABLATION["f"]["top1"] == 0.726
    assert PAPER_ABLATION["c"]["top5"] == 0.863
    for row, (method, aggregators) in {
        "a": ("plain", False),
        "d": ("plain", True),
        "g": ("move", True),
    }.items():
        assert PAPER_ABLATION[row] == paper_result("videolt", "resnet101", method, aggregators)
    assert paper_ablation("videolt", "resnet50", "g") is None
    assert paper_ablation("minikinetics", "resnet101", "g") is None


def ablation_runs(tmp_path, seeds=(0, 1), dataset="videolt", backbone="resnet101"):
    rng = np.random.default_rng(1)
    pairs, values = [], {}
    for row, switches in ABLATION_ROWS.items():
        for seed in seeds:
            values[row, seed] = rng.uniform(0.3, 0.7, size=6)
            path = tmp_path / f"{row}/seed{seed}.json"
            write_run(path, switches, seed, values[row, seed], dataset, backbone, None)
            pairs.append(f"{row}={path}")
    return pairs, values


def test_ablation_table_has_rows_a_to_g_over_seeds_with_table_4_beside(tmp_path):
    pairs, values = ablation_runs(tmp_path)
    md, csv = tmp_path / "ablation.md", tmp_path / "ablation.csv"
    done = run_move("ablation-table", *pairs, "--out-md", str(md), "--out-csv", str(csv))
    assert done.returncode == 0, done.stderr
    lines = md.read_text().splitlines()
    final = lines[lines.index("## final: the last epoch of each run (the honest headline)") :]
    marks = {
        line.split(" | ")[0][2:]: line.split(" | ")[1:5] for line in final if line.startswith("| (")
    }
    assert marks == {
        "(a)": ["", "", "", ""],
        "(b)": ["✓", "", "", ""],
        "(c)": ["", "✓", "", ""],
        "(d)": ["✓", "✓", "", ""],
        "(e)": ["✓", "✓", "✓", ""],
        "(f)": ["✓", "✓", "", "✓"],
        "(g)": ["✓", "✓", "✓", "✓"],
    }
    table = pd.read_csv(csv)
    cell = table[
        (table.row == "e") & (table.protocol == "final") & (table.metric == "tail_mAP")
    ].iloc[0]
    by_seed = np.array([values["e", seed][3] for seed in (0, 1)])
    assert cell["mean"] == pytest.approx(by_seed.mean()) and cell["std"] == pytest.approx(
        by_seed.std(ddof=1)
    )
    assert cell["paper"] == 0.632


def test_ablation_table_refuses_a_run_of_another_row(tmp_path):
    pairs, _ = ablation_runs(tmp_path, seeds=(0,), dataset="minikinetics")
    swapped = [pair.replace("b=", "c=", 1) if pair.startswith("b=") else pair for pair in pairs]
    done = run_move(
        "ablation-table",
        *swapped,
        "--out-md",
        str(tmp_path / "a.md"),
        "--out-csv",
        str(tmp_path / "a.csv"),
    )
    assert done.returncode == 1 and "is not row (c) of Table 4" in done.stderr
    pairs, _ = ablation_runs(tmp_path, seeds=(0,), dataset="minikinetics")
    done = run_move(
        "ablation-table",
        *pairs,
        "--out-md",
        str(tmp_path / "a.md"),
        "--out-csv",
        str(tmp_path / "a.csv"),
    )
    assert done.returncode == 0 and "(0.719" not in (tmp_path / "a.md").read_text()  # no paper run


@pytest.mark.parametrize(("dataset", "warned"), [("minikinetics", True), ("videolt", False)])
def test_runs_on_kinetics_trained_features_of_a_kinetics_subset_are_flagged(
    tmp_path, dataset, warned
):
    ir = 0.01 if dataset == "minikinetics" else None
    path = write_run(
        tmp_path / "r.json", VARIANTS["move"], 0, [0.5] * 6, dataset, "tsm_resnet50", ir
    )
    data = json.loads(path.read_text()) | {"features_weights": "kinetics"}
    path.write_text(json.dumps(data))
    done, md, _ = paper_table(tmp_path, [path])
    assert done.returncode == 0, done.stderr
    assert ("Kinetics-400-trained weights" in md.read_text()) == warned


# --- issue 32: a cell is one experiment, its split's train videos included -------------------


def with_split(path, train: dict[str, int], split_path="splits/minikinetics_ir0.01.csv"):
    """Give a results file the split identity `move train` records (``train``: id -> class)."""
    from move.training.results import train_videos_sha256

    results = json.loads(path.read_text())
    table = pd.DataFrame({"video_id": list(train), "class_index": list(train.values())})
    counts = np.bincount(list(train.values()), minlength=2).tolist()
    results |= {"n_train": len(train)}
    results["split"] = {
        "path": split_path,
        "sha256": "x",
        "train_videos_sha256": train_videos_sha256(table),
        "train_counts": counts,
    }
    path.write_text(json.dumps(results))
    return path


def test_seeds_trained_on_other_train_videos_are_not_averaged(tmp_path):
    """Cause 7: two seeds at the same IR, one split rebuilt in between (n_train 6 against 8),
    or the same counts but other videos: refused in one line naming both files. On 4e1bccc
    they were averaged into one cell without a word."""
    values = [0.5] * len(METRICS)
    first = write_run(tmp_path / "seed0.json", VARIANTS["move"], 0, values)
    second = write_run(tmp_path / "seed1.json", VARIANTS["move"], 1, values)
    six = {f"v{i}": i % 2 for i in range(6)}
    eight = {f"v{i}": i % 2 for i in range(8)}
    with_split(first, eight)
    with_split(second, six)
    args = ["paper-table", first, second, "--rows", "move", "--out-md", tmp_path / "t.md",
            "--out-csv", tmp_path / "t.csv"]  # fmt: skip
    done = run_move(*args)
    assert done.returncode == 1, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
    assert (
        f"results files {first} and {second} differ in n_train (8 vs 6 train videos)" in done.stderr
    )
    others = {f"w{i}": i % 2 for i in range(8)}  # as many per class, other videos
    with_split(second, others)
    done = run_move(*args)
    assert done.returncode == 1 and "differ in the split's train videos" in done.stderr
    assert not (tmp_path / "t.md").exists()
    with_split(second, dict(reversed(list(eight.items()))))  # the same videos in another order
    assert run_move(*args).returncode == 0


def test_seeds_of_splits_drawn_by_their_seed_may_differ_in_videos_not_in_counts(tmp_path):
    """split.selection random: seed k trains on splits/<d>_ir<IR>_seed<k>.csv, other videos by
    design; the cell still needs the same number per class."""
    values = [0.5] * len(METRICS)
    runs = [write_run(tmp_path / f"seed{k}.json", VARIANTS["move"], k, values) for k in (0, 1)]
    with_split(runs[0], {f"v{i}": i % 2 for i in range(8)}, "splits/m_ir0.01_seed0.csv")
    with_split(runs[1], {f"w{i}": i % 2 for i in range(8)}, "splits/m_ir0.01_seed1.csv")
    args = ["paper-table", *runs, "--rows", "move", "--out-md", tmp_path / "t.md",
            "--out-csv", tmp_path / "t.csv"]  # fmt: skip
    assert run_move(*args).returncode == 0
    with_split(runs[1], {f"w{i}": int(i < 2) for i in range(8)}, "splits/m_ir0.01_seed1.csv")
    done = run_move(*args)
    assert done.returncode == 1 and "differ in the split's per-class train counts" in done.stderr
