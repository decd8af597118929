"""Each figure of `move plot` renders from a tiny training run; the report builds end to end."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from move.reporting.plots import image_stats
from move.training.loop import train
from move.training.results import RunInfo
from move.training.settings import ABLATION_ROWS, TrainSettings
from tests.conftest import run_move, tiny_train, write_feature_file

TINY_TRAIN = tiny_train(
    epochs=2,
    lr=0.001,
    lr_milestones=[1],
    frames_train=4,
    frames_test=4,
    feature_dim=16,
    d_k=8,
    d_v=8,
    clusters=4,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """A 4-class long-tailed split, its features and a 2-epoch MOVE run at two IRs."""
    root = tmp_path_factory.mktemp("plots")
    counts = {"c0": 6, "c1": 4, "c2": 2, "c3": 1}
    rows, labels = [], {}
    for index, (name, n) in enumerate(counts.items()):
        for i in range(n + 2):
            video = f"{name}_{i}"
            labels[video] = name
            rows.append((video, str(index), name, "train" if i < n else "test"))
    features = write_feature_file(root / "f.h5", labels, frames=6, dim=16)
    split = pd.DataFrame(rows, columns=["video_id", "class_index", "label", "split"])
    runs = []
    for ir in ("0.2", "0.5"):
        split.to_csv(root / f"toy_ir{ir}.csv", index=False)
        out = root / f"toy_ir{ir}.json"
        train(
            features,
            root / f"toy_ir{ir}.csv",
            out,
            root / f"toy_ir{ir}.pt",
            TrainSettings.from_dict(TINY_TRAIN),
            head_min=5,
            tail_max=2,
            progress=False,
            run_info=RunInfo("toy", float(ir)),
        )
        runs.append(out)
    return {"root": root, "features": features, "split": root / "toy_ir0.5.csv", "runs": runs}


def test_map_vs_ir_draws_the_mean_and_spread_over_seeds(tiny_run):
    """Two seeds of a run at one IR are one point: their mean, with their std as error bar."""
    import json

    first = json.loads(tiny_run["runs"][0].read_text())
    second = first | {"seed": 1, "final": first["final"] | {"mAP": first["final"]["mAP"] + 0.1}}
    other = tiny_run["root"] / "seeds" / "seed1.json"
    other.parent.mkdir(exist_ok=True)
    other.write_text(json.dumps(second))
    out = tiny_run["root"] / "seeds" / "map.png"
    result = move_plot(
        "map-vs-ir", "--results", str(tiny_run["runs"][0]), str(other), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    data = assert_figure(out)
    assert sorted(data.seed) == [0, 1] and set(data.mAP_count) == {2}
    mean = (2 * first["final"]["mAP"] + 0.1) / 2
    assert data.mAP_mean.iloc[0] == pytest.approx(mean)
    assert data.mAP_std.iloc[0] == pytest.approx(0.1 / 2**0.5)


def move_plot(*args: str) -> subprocess.CompletedProcess:
    return run_move("plot", *args)


def assert_figure(png: Path) -> pd.DataFrame:
    """The PNG exists, is a real image that is not blank, and has a non-empty data CSV."""
    assert png.is_file() and png.stat().st_size > 5000
    shape, variance = image_stats(png)
    assert shape[0] > 200 and shape[1] > 300
    assert variance > 0.005
    data = pd.read_csv(png.with_suffix(".csv"))
    assert len(data) > 0
    return data


@pytest.mark.parametrize(
    "figure,extra",
    [("per-class-ap", "runs"), ("map-vs-ir", "runs"), ("curves", "runs")],
)
def test_result_figures(tiny_run, figure, extra):
    out = tiny_run["root"] / f"{figure}.png"
    result = move_plot(figure, "--results", *map(str, tiny_run[extra]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = assert_figure(out)
    if figure == "map-vs-ir":
        assert sorted(data.ir) == [0.2, 0.5] and set(data.method) == {"MOVE (ours) ✓ synthetic"}
    if figure == "per-class-ap":
        assert data.groupby("run").train_count.apply(lambda s: s.is_monotonic_decreasing).all()
    if figure == "curves":
        assert list(data.epoch[: len(data) // 2]) == [1, 2] and data.loss.notna().all()


def test_attention_figure(tiny_run):
    out = tiny_run["root"] / "attention.png"
    checkpoint = str(tiny_run["runs"][1].with_suffix(".pt"))
    common = ["--checkpoint", checkpoint, "--features", str(tiny_run["features"])]
    result = move_plot(
        "attention", *common, "--split", str(tiny_run["split"]), "--out", str(out), "--count", "2"
    )
    assert result.returncode == 0, result.stderr
    data = assert_figure(out)
    assert data.video_id.nunique() == 2
    heads = data[["attention_head1", "attention_head2"]]
    sums = heads.groupby(data.video_id).sum()
    assert ((sums - 1).abs() < 1e-4).all().all()  # attention over frames sums to 1 per head
    clusters = data[[f"cluster{k}" for k in range(4)]].sum(axis=1)
    assert ((clusters - 1).abs() < 1e-4).all()  # soft assignment per frame sums to 1


@pytest.mark.parametrize("row", sorted(ABLATION_ROWS))
def test_attention_and_confidence_figures_for_every_table4_row(tiny_run, tmp_path, row):
    """Rows b (PSA only) and c (codebook only) draw the part they have; row a (frame-wise) its
    frames' scores."""
    settings = TrainSettings.from_dict({**TINY_TRAIN, **ABLATION_ROWS[row], "epochs": 1})
    checkpoint = tmp_path / f"{row}.pt"
    split = tiny_run["split"]
    train(tiny_run["features"], split, tmp_path / f"{row}.json", checkpoint, settings, 5, 2, False)
    common = ["--checkpoint", str(checkpoint), "--features", str(tiny_run["features"])]
    common += ["--split", str(split)]
    out = tmp_path / f"attention_{row}.png"
    result = move_plot("attention", *common, "--out", str(out), "--count", "1")
    assert result.returncode == 0, result.stderr
    data = assert_figure(out)
    assert ("attention_head1" in data) == (row != "a" and row != "c")
    assert ("cluster0" in data) == (row not in ("a", "b"))
    assert ("frame_score" in data) == (row == "a")
    confidence = tmp_path / f"confidence_{row}.png"
    result = move_plot("confidence", *common, "--out", str(confidence))
    assert result.returncode == 0, result.stderr


def test_confidence_figure(tiny_run):
    out = tiny_run["root"] / "confidence.png"
    checkpoint = str(tiny_run["runs"][1].with_suffix(".pt"))
    result = move_plot(
        "confidence",
        "--checkpoint",
        checkpoint,
        "--features",
        str(tiny_run["features"]),
        "--split",
        str(tiny_run["split"]),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    data = assert_figure(out)
    assert list(data.train_count) == [6, 4, 2, 1]
    assert data.original.between(0, 1).all() and data.interpolated.between(0, 1).all()


def test_plot_without_needed_inputs_is_one_line(tmp_path):
    result = move_plot("confidence", "--out", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "move plot: error: 'move plot confidence' needs --checkpoint, --features, --split"
    ]


@pytest.mark.slow
def test_workflow_figures_and_report(tmp_path):
    """The report of a dataset other than the demo (`report_<dataset>`): here `mini`, the tiny
    demo's videos under another name, so its features, splits and results are its own."""
    from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

    tiny = merged_config(TINY_CONFIG)
    tiny["datasets"]["demo"]["train"]["epochs"] = 2
    tiny["datasets"]["mini"] = tiny["datasets"]["demo"]
    tiny["seeds"] = [0, 1]  # the results figures draw the mean and spread of two seeds
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny))
    run = snakemake(tmp_path, "report_mini")
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("per_class_ap", "map_vs_ir", "curves", "runtimes"):
        assert_figure(tmp_path / f"figures/mini/{name}.png")
    for name in ("attention", "confidence"):
        assert_figure(tmp_path / f"figures/mini_ir0.5/{name}.png")
    assert not (tmp_path / "figures/demo").exists()
    runtimes = pd.read_csv(tmp_path / "figures/mini/runtimes.csv")
    assert {"extract_shard", "merge_features", "split", "train", "plot_model"} <= set(runtimes.rule)
    assert set(runtimes.job.str.split("[_/]").str[0]) == {"mini"}  # only the jobs of `mini`
    assert {"mini/resnet50/ir0.5/move_seed0", "mini/resnet50/ir0.5/move_seed1"} <= set(runtimes.job)
    curves = pd.read_csv(tmp_path / "figures/mini/curves.csv")
    assert sorted(curves.seed.unique()) == [0, 1]
    assert (runtimes.seconds > 0).all()

    report = snakemake(tmp_path, "--report", "results/report.html", "report_mini")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "results/report.html").read_text()
    assert len(html) > 100_000  # self-contained: images are embedded
    for text in ("attention.png", "confidence.png", "runtimes.csv", "config.yaml", "map_vs_ir"):
        assert text in html
    assert "seeds 0, 1" in html  # the captions name the seeds
