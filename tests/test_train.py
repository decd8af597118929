"""Training: determinism, checkpoint reload, resume after interruption, results files, multi-label."""

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

import move.training.registry as registry
from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
from move.training import artefacts
from move.training.evaluation import evaluate_checkpoint
from move.training.loop import train
from move.training.results import summary
from move.training.settings import ABLATION_ROWS, TrainSettings
from tests.conftest import run_move, tiny_train

TINY = tiny_train(eval_every=2, feature_dim=16)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    spec = SyntheticSpec(classes=5, n_max=16, test_per_class=4, frames=8, dim=16, seed=1)
    make_synthetic_features(root / "f.h5", root / "split.csv", spec)
    return root / "f.h5", root / "split.csv"


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilabel")
    spec = SyntheticSpec(
        classes=5, n_max=16, test_per_class=4, frames=8, dim=16, multi_label=0.5, seed=2
    )
    make_synthetic_features(root / "f.h5", root / "split.csv", spec)
    return root / "f.h5", root / "split.csv"


def _run(data, tmp_path, name, **overrides):
    features, split = data
    settings = TrainSettings.from_dict({**TINY, **overrides})
    return train(
        features, split, tmp_path / f"{name}.json", tmp_path / f"{name}.pt", settings, 12, 4, False
    )


@pytest.mark.parametrize("method", ["move", "framestack", "cbs"])
def test_same_seed_gives_identical_metrics(synthetic, tmp_path, method):
    a = _run(synthetic, tmp_path, "a", method=method)
    b = _run(synthetic, tmp_path, "b", method=method)
    _assert_same_but_timing(a, b)
    c = _run(synthetic, tmp_path, "c", method=method, seed=5)
    assert c["final"]["mAP"] != a["final"]["mAP"]


def _strip_timing(history):
    return [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in history]


def _assert_same_but_timing(a, b):
    """Identical metrics and losses at every epoch (wall-clock timings aside)."""
    assert a["final"] == b["final"] and a["best"] == b["best"]
    assert _strip_timing(a["history"]) == _strip_timing(b["history"])


def test_results_json_and_per_class_csv(synthetic, tmp_path):
    results = _run(synthetic, tmp_path, "run", method="move")
    on_disk = json.loads((tmp_path / "run.json").read_text())
    for part in ("final", "best"):
        for key in ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5", "epoch"):
            assert key in on_disk[part]
    assert on_disk["final"]["epoch"] == 3 and on_disk["best"]["epoch"] in (2, 3)
    assert on_disk["seed"] == 0 and on_disk["settings"]["method"] == "move"
    assert len(on_disk["features"]["sha256"]) == 64 and "git_commit" in on_disk
    table = pd.read_csv(tmp_path / "run.per_class.csv")
    assert list(table.columns) == ["class_index", "label", "train_count", "group", "AP"]
    assert table.train_count.tolist() == [16, 7, 3, 1, 1]  # floor(16 * 0.05^(c/4))
    assert set(table.group) <= {"head", "medium", "tail"}
    assert table.AP.mean() == pytest.approx(results["final"]["mAP"])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_evaluate_reloads_checkpoint_with_same_metrics(synthetic, tmp_path, dtype):
    """The kept checkpoint in a compact dtype gives the run's metrics within 1e-3 (float32:
    the same), at about half the size."""
    results = _run(synthetic, tmp_path, "run", method="move", checkpoint_dtype=dtype)
    again = summary(evaluate_checkpoint(tmp_path / "run.pt", *synthetic, device="cpu"))
    for key, value in again.items():
        tolerance = 1e-9 if dtype == "float32" else 1e-3
        assert value == pytest.approx(results["final"][key], abs=tolerance), key
    state = torch.load(tmp_path / "run.pt", weights_only=False)["model"]
    floats = {t.dtype for t in state.values() if t.is_floating_point()}
    assert floats == {getattr(torch, dtype)}
    tensor_bytes = sum(t.numel() * t.element_size() for t in state.values())
    full_bytes = sum(
        t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in state.values()
    )
    non_float = full_bytes - sum(4 * t.numel() for t in state.values() if t.is_floating_point())
    expected = full_bytes if dtype == "float32" else (full_bytes - non_float) / 2 + non_float
    assert tensor_bytes == expected


def test_the_resume_state_is_written_at_most_every_resume_every_minutes(
    synthetic, tmp_path, monkeypatch
):
    """0 minutes: after every epoch but the last (whose state is the checkpoint); 60: none in a
    run shorter than an hour."""
    writes = []
    original = artefacts.save_progress
    monkeypatch.setattr(
        artefacts, "save_progress", lambda *a: writes.append(a[1].epoch) or original(*a)
    )
    _run(synthetic, tmp_path, "every", method="plain", epochs=3, resume_every_minutes=0)
    assert writes == [1, 2]
    writes.clear()
    _run(synthetic, tmp_path, "hourly", method="plain", epochs=3, resume_every_minutes=60)
    assert writes == [] and not (tmp_path / "hourly.pt.partial").exists()


@pytest.mark.parametrize("method", ["move", "framestack"])
def test_resume_after_interruption_gives_same_metrics(synthetic, tmp_path, monkeypatch, method):
    """Killed in epoch 2, rerun: the same metrics (FrameStack also restores its per-class AP)."""
    reference = _run(synthetic, tmp_path, "ref", method=method)
    calls = {"n": 0}
    original = registry.registered()[method]

    def dies_mid_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 6:  # 4 batches per epoch (28 videos, the last batch of 4 kept)
            raise KeyboardInterrupt
        return original.transform(*args)

    dying = dataclasses.replace(original, transform=dies_mid_epoch_two)
    monkeypatch.setitem(registry._REGISTRY, method, dying)
    with pytest.raises(KeyboardInterrupt):
        _run(synthetic, tmp_path, "resumed", method=method)
    partial = torch.load(tmp_path / "resumed.pt.partial", weights_only=False)
    assert partial["epoch"] == 1
    assert ("class_ap" in partial["method_state"]) == (method == "framestack")
    monkeypatch.setitem(registry._REGISTRY, method, original)
    resumed = _run(synthetic, tmp_path, "resumed", method=method)
    _assert_same_but_timing(resumed, reference)
    assert not (tmp_path / "resumed.pt.partial").exists()


def test_multi_label_training_and_metrics(multilabel, tmp_path):
    split = pd.read_csv(multilabel[1], dtype=str)
    assert split.class_index.str.contains(";").any()
    results = _run(multilabel, tmp_path, "ml", method="move")
    assert (
        0 <= results["final"]["mAP"] <= 1 and results["final"]["top5"] >= results["final"]["top1"]
    )
    base = _run(multilabel, tmp_path, "ml_plain", method="plain", aggregators=False)
    assert 0 <= base["final"]["mAP"] <= 1


def test_every_table4_row_is_a_valid_config():
    for row, switches in ABLATION_ROWS.items():
        settings = TrainSettings.from_dict({**TINY, **switches})
        assert settings.model.aggregators == (row != "a")
    assert not TrainSettings.from_dict({**TINY, **ABLATION_ROWS["b"]}).model.codebook_attentive
    assert not TrainSettings.from_dict({**TINY, **ABLATION_ROWS["c"]}).model.self_attentive


def test_move_evaluate_cli_matches_training_metrics(synthetic, tmp_path):
    results = _run(synthetic, tmp_path, "cli", method="plain", aggregators=True)
    features, split = synthetic
    command = ["evaluate", "--checkpoint", tmp_path / "cli.pt", "--features", features]
    command += ["--split", split, "--device", "cpu", "--out", tmp_path / "eval.json"]
    assert run_move(*command).returncode == 0
    again = json.loads((tmp_path / "eval.json").read_text())
    for key in ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5"):
        assert again[key] == pytest.approx(results["final"][key]), key


def test_feature_hash_cache_follows_the_file(tmp_path):
    import hashlib

    from move.training.results import cached_sha256

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert cached_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    assert (tmp_path / "f.bin.sha256").is_file()
    path.write_bytes(b"abcd")  # size changes -> recomputed
    assert cached_sha256(path) == hashlib.sha256(b"abcd").hexdigest()


def test_model_input_size_comes_from_the_feature_file(synthetic, tmp_path):
    """Settings left at the 2048-d default still train on 16-d features; evaluate agrees."""
    settings = {key: value for key, value in TINY.items() if key != "feature_dim"}
    results = _run(synthetic, tmp_path, "dim", **settings)
    assert results["settings"]["model"]["feature_dim"] == 16
    reloaded = summary(evaluate_checkpoint(tmp_path / "dim.pt", *synthetic, device="cpu"))
    assert reloaded["mAP"] == results["final"]["mAP"]


def _permuted_split(split: Path, out: Path) -> Path:
    """The same videos and names, class indices 0 and 1 swapped (a relabelled split)."""
    table = pd.read_csv(split, dtype=str)
    table["class_index"] = table.class_index.map(lambda c: {"0": "1", "1": "0"}.get(c, c))
    table.to_csv(out, index=False)
    return out


def test_evaluate_refuses_a_split_whose_classes_are_permuted(synthetic, tmp_path, capsys):
    from move.cli import main

    features, split = synthetic
    _run(synthetic, tmp_path, "run", method="plain", aggregators=False)
    permuted = _permuted_split(split, tmp_path / "permuted.csv")
    args = ["evaluate", "--checkpoint", str(tmp_path / "run.pt"), "--features", str(features)]
    assert main([*args, "--split", str(permuted)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "checkpoint" in error
    assert str(tmp_path / "run.pt") in error and str(permuted) in error
    assert "class 0 is 'class000' there and 'class001' in the split" in error
    assert main([*args, "--split", str(split)]) == 0  # the split it was trained on


def _killed_in_epoch_two(synthetic, tmp_path, monkeypatch, name: str, **settings) -> None:
    """A run of ``plain`` stopped in its second epoch: ``<name>.pt.partial`` holds epoch 1."""
    original = registry.registered()["plain"]

    def dies_in_epoch_two(model, batch, context):
        if context.epoch == 1:
            raise KeyboardInterrupt
        return original.transform(model, batch, context)

    dying = dataclasses.replace(original, transform=dies_in_epoch_two)
    monkeypatch.setitem(registry._REGISTRY, "plain", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(synthetic, tmp_path, name, method="plain", aggregators=False, **settings)
    monkeypatch.setitem(registry._REGISTRY, "plain", original)
    assert torch.load(tmp_path / f"{name}.pt.partial", weights_only=False)["epoch"] == 1


def test_resume_state_of_a_split_whose_classes_are_permuted_is_set_aside(
    synthetic, tmp_path, monkeypatch, capsys
):
    """Another split (here its classes permuted) is another input: the state is not resumed
    (it would train on relabelled videos); the run starts afresh, saying so in one line."""
    _killed_in_epoch_two(synthetic, tmp_path, monkeypatch, "run")
    permuted = _permuted_split(synthetic[1], tmp_path / "permuted.csv")
    settings = TrainSettings.from_dict({**TINY, "method": "plain", "aggregators": False})
    capsys.readouterr()
    train(synthetic[0], permuted, tmp_path / "r.json", tmp_path / "run.pt", settings, 12, 4, False)
    err = capsys.readouterr().err
    assert "resuming" not in err
    assert f"ignoring {tmp_path / 'run.pt.partial'}: made from another split than {permuted}" in err


@pytest.mark.parametrize("changed", ["features", "split"])
def test_a_resume_state_of_other_inputs_is_set_aside_through_the_cli(
    synthetic, tmp_path, monkeypatch, capsys, changed
):
    """Issue 32, cause 1: a run killed mid-way and rerun through `move train` on other features
    (the same videos and classes, other values) or on another split of the same classes (one
    train video fewer) starts afresh, saying so in one line, and ends as an uninterrupted run on
    those inputs does; on 4e1bccc it resumed the old model."""
    import shutil

    import h5py

    from move.cli import main

    features, split = tmp_path / "f.h5", tmp_path / "split.csv"
    shutil.copy(synthetic[0], features)
    shutil.copy(synthetic[1], split)
    _killed_in_epoch_two((features, split), tmp_path, monkeypatch, "run")
    if changed == "features":
        with h5py.File(features, "r+") as handle:
            for video in handle["videos"].values():
                video[...] = video[()] * 0.5 + 1.0
    else:
        table = pd.read_csv(split, dtype=str)
        drop = table.index[table.split == "train"][0]
        table.drop(index=drop).to_csv(split, index=False)
    settings = json.dumps({**TINY, "method": "plain", "aggregators": False})
    capsys.readouterr()
    for name in ("run", "fresh"):
        argv = ["train", "--features", features, "--split", split, "--out",
                tmp_path / f"{name}.json", "--checkpoint", tmp_path / f"{name}.pt",
                "--settings", settings, "--head-min", "12", "--tail-max", "4", "--quiet"]  # fmt: skip
        assert main([str(a) for a in argv]) == 0
        err = capsys.readouterr().err
        if name == "run":
            assert "resuming" not in err
            noun = "another feature file" if changed == "features" else "another split than"
            lines = [line for line in err.splitlines() if line.startswith("ignoring")]
            assert len(lines) == 1 and f"run.pt.partial: made from {noun}" in lines[0], err
    resumed, fresh = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("run", "fresh"))
    assert resumed["final"] == fresh["final"]
    assert not (tmp_path / "run.pt.partial").exists()
    # the split's identity the tables over seeds compare (issue 32, cause 7)
    assert len(resumed["split"]["train_videos_sha256"]) == 64
    assert sum(resumed["split"]["train_counts"]) == resumed["n_train"]


def test_the_last_partial_batch_is_kept_unless_it_holds_one_video():
    from move.training.loading import EpochSampler
    from move.training.methods.common import shuffled

    labels = [[0]] * 28
    assert len(EpochSampler(labels, 1, shuffled, 0, 8)) == 28  # 3 batches of 8 and one of 4
    assert len(EpochSampler(labels[:25], 1, shuffled, 0, 8)) == 24  # a lone 25th is left out
    order = [index for index, _ in EpochSampler(labels, 1, shuffled, 0, 8)]
    assert sorted(order) == list(range(28))


def test_schema_defaults_of_the_train_section_are_the_settings_defaults():
    from move.config import load_schema
    from move.training.methods import get_method, method_names

    properties = load_schema()["$defs"]["train"]["properties"]
    defaults = TrainSettings().to_dict()
    defaults |= defaults.pop("model")
    with_default = {key: spec["default"] for key, spec in properties.items() if "default" in spec}
    assert {"grad_clip", "self_attentive", "codebook_attentive"} <= set(with_default)
    for key, value in with_default.items():
        own = list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key]
        assert own == value, key
    for name in method_names():  # each method's section: its dataclass's defaults
        section = properties[name]["properties"]
        generated = {key: spec["default"] for key, spec in section.items()}
        assert generated == dataclasses.asdict(get_method(name).options()), name
