"""Training precision (float32, tf32, bf16) and the compiled model, on the CPU.

bf16 runs the forward pass under bfloat16 autocast, which works on the CPU too: a seeded bf16 run
ends within ``BF16_TOLERANCE`` of float32's final metrics, on a synthetic long-tailed set and on
the demo's features. tf32 has no effect on the CPU: the same numbers as float32.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
from move.errors import MoveError
from move.extraction.decoding import list_videos
from move.extraction.extract import ExtractSettings, extract_features
from move.training import precision
from move.training.loop import train
from move.training.settings import NOT_IN_FINGERPRINT, TrainSettings
from tests.conftest import run_move, tiny_train

# The stated tolerance: a seeded bf16 run's final mAP within this much of float32's (absolute).
# Measured on these sets (4 and 6 epochs): at most 0.016 on the demo (12 test videos), 0.004 on
# the synthetic set. Its group mAPs agree as closely there (30 test videos, 2 classes a group); on
# the demo a group is one class of 3 test videos, where one swapped rank moves AP by 0.03.
BF16_TOLERANCE = 0.02
GROUP_METRICS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP")


@pytest.fixture(scope="module")
def long_tailed(tmp_path_factory):
    """A synthetic long-tailed set: 6 classes, IR 0.1 (20 -> 2 train videos), 8 frames."""
    root = tmp_path_factory.mktemp("long_tailed")
    spec = SyntheticSpec(
        classes=6, n_max=20, imbalance_ratio=0.1, test_per_class=5, frames=8, dim=16, seed=4
    )
    make_synthetic_features(root / "f.h5", root / "split.csv", spec)
    return root / "f.h5", root / "split.csv", (12, 4)


@pytest.fixture(scope="module")
def demo_features(tiny_videos, tmp_path_factory):
    """The tiny demo's features (random ResNet-50, 3 frames of 32x32) and an IR 0.5 split."""
    root = tmp_path_factory.mktemp("demo_features")
    videos = list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos")
    settings = ExtractSettings(
        frames=3, resize=40, crop=32, batch_size=8, device="cpu", weights="none"
    )
    extract_features(videos, root / "f.h5", root / "f.failures.csv", settings, progress=False)
    split = root / "split.csv"
    done = run_move(
        "split", "--annotations", tiny_videos / "annotations.csv", "--features", root / "f.h5",
        "--ir", 0.5, "--max-per-class", 6, "--head-min", 5, "--tail-max", 3, "--out", split,
        "--class-counts", root / "counts.csv",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root / "f.h5", split, (5, 3)


def _train(data, tmp_path, name, **changes) -> dict:
    features, split, groups = data
    settings = TrainSettings.from_dict(tiny_train(**changes))
    out = tmp_path / f"{name}.json"
    return train(features, split, out, tmp_path / f"{name}.pt", settings, *groups, False)


def _losses(results: dict) -> list[float]:
    return [record["loss"] for record in results["history"]]


@pytest.mark.parametrize("method", ["move", "plain"])
def test_tf32_is_float32_on_the_cpu(long_tailed, tmp_path, method):
    """No TF32 on a CPU: the same losses and metrics, bit for bit."""
    reference = _train(long_tailed, tmp_path, "f32", method=method, epochs=2)
    tf32 = _train(long_tailed, tmp_path, "tf32", method=method, epochs=2, precision="tf32")
    assert _losses(tf32) == _losses(reference) and tf32["final"] == reference["final"]


@pytest.mark.parametrize(
    ("data", "method"),
    [("long_tailed", "move"), ("long_tailed", "plain"), ("demo_features", "move")],
)
def test_bf16_ends_within_the_tolerance_of_float32(data, method, tmp_path, request):
    reference = _train(request.getfixturevalue(data), tmp_path, "f32", method=method, epochs=4)
    bf16 = _train(
        request.getfixturevalue(data), tmp_path, "bf16", method=method, epochs=4, precision="bf16"
    )
    keys = GROUP_METRICS if data == "long_tailed" else ("mAP",)
    for key in keys:
        assert bf16["final"][key] == pytest.approx(reference["final"][key], abs=BF16_TOLERANCE)
    # it did run in bfloat16: the losses differ in their last digits, not more
    assert _losses(bf16) != _losses(reference)
    assert _losses(bf16) == pytest.approx(_losses(reference), rel=0.02)
    assert bf16["settings"]["precision"] == "bf16"


def test_bf16_runs_the_forward_pass_in_bfloat16_and_the_loss_in_float32():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with precision.forward_precision("bf16", x.device):
        assert layer(x).dtype == torch.bfloat16
    with precision.forward_precision("float32", x.device):
        assert layer(x).dtype == torch.float32
    with precision.forward_precision("tf32", x.device):
        assert layer(x).dtype == torch.float32


def test_tf32_flags_are_set_only_on_cuda_and_restored():
    before = torch.backends.cuda.matmul.allow_tf32
    with precision.matmul_precision("tf32", torch.device("cpu")):
        assert torch.backends.cuda.matmul.allow_tf32 == before
    with precision.matmul_precision("tf32", torch.device("cuda")):  # flags only, no device used
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_precision_is_in_the_fingerprint_but_float32_keeps_the_old_one():
    default = TrainSettings()
    values = default.to_dict()
    for key in (*NOT_IN_FINGERPRINT, "precision"):
        values.pop(key)
    old = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    assert default.fingerprint() == old  # the hash of the settings before precision existed
    assert TrainSettings(precision="bf16").fingerprint() != old
    assert TrainSettings(precision="tf32").fingerprint() != old
    assert TrainSettings(compile=True).fingerprint() == old  # how it runs, not what


def test_an_unknown_precision_is_one_line_naming_the_choices():
    with pytest.raises(
        MoveError, match=r"'precision': 'fp16' is not allowed \(choose one of float32, tf32, bf16\)"
    ):
        TrainSettings.from_dict({"precision": "fp16"})


def test_cli_options_override_the_settings_json(long_tailed, tmp_path):
    features, split, groups = long_tailed
    settings = json.dumps(tiny_train(epochs=1, method="plain"))
    done = run_move(
        "train", "--features", features, "--split", split, "--out", tmp_path / "r.json",
        "--settings", settings, "--head-min", groups[0], "--tail-max", groups[1],
        "--precision", "bf16", "--no-compile", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = json.loads((tmp_path / "r.json").read_text())["settings"]
    assert recorded["precision"] == "bf16" and recorded["compile"] is False
    help_text = run_move("train", "--help").stdout
    assert "--precision {float32,tf32,bf16}" in help_text and "--compile, --no-compile" in help_text


def test_seeds_of_one_cell_may_differ_in_compile_not_in_precision():
    from move.reporting.seeds import settings_difference

    def results(**settings):
        return {"settings": {"lr": 1e-4, **settings}, "seed": 0}

    assert settings_difference(results(compile=True), results(compile=False)) == ""
    assert settings_difference(results(), results(precision="float32")) == ""  # written before
    assert "precision" in settings_difference(results(), results(precision="bf16"))


def test_without_a_compiler_the_run_says_so_in_one_line_and_trains_uncompiled(
    long_tailed, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    reason = precision.missing_compiler(torch.device("cpu"))
    assert reason is not None and "no C++ compiler found" in reason and "\n" not in reason
    reference = _train(long_tailed, tmp_path, "eager", method="plain", epochs=1)
    capsys.readouterr()
    compiled = _train(long_tailed, tmp_path, "compiled", method="plain", epochs=1, compile=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"train.compile: {reason}; training uncompiled (the same maths, slower)"]
    assert _losses(compiled) == _losses(reference)


def test_a_compiler_named_in_cxx_is_used(tmp_path, monkeypatch):
    compiler = tmp_path / "my-g++"
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CXX", "my-g++")
    assert precision.missing_compiler(torch.device("cpu")) is None
    monkeypatch.setenv("CXX", "absent-g++")
    assert "CXX" in precision.missing_compiler(torch.device("cpu"))


@pytest.mark.slow  # inductor builds C++ kernels: about a minute on one CPU core
@pytest.mark.skipif(
    precision.missing_compiler(torch.device("cpu")) is not None, reason="no C++ compiler here"
)
def test_compiled_and_eager_runs_agree(long_tailed, tmp_path):
    """The same seeded MOVE run compiled and eager: every epoch's loss within 1e-5 (relative),
    the final metrics within 1e-4; the checkpoint keeps the eager model's keys."""
    eager = _train(long_tailed, tmp_path, "eager", method="move")
    compiled = _train(long_tailed, tmp_path, "compiled", method="move", compile=True)
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-5)
    for key in GROUP_METRICS:
        assert compiled["final"][key] == pytest.approx(eager["final"][key], abs=1e-4)
    keys = set(torch.load(tmp_path / "compiled.pt", weights_only=False)["model"])
    assert keys == set(torch.load(tmp_path / "eager.pt", weights_only=False)["model"])
