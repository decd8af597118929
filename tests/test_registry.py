"""The method registry is the one list: a method in one file (``tests/example_method.py``) trains,
validates in the config with its own settings section, is offered by the CLI and lands in the
tables; a method of another package is found through the ``move.methods`` entry point; a
decoupled (two-stage) baseline needs no loop edit."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from move.cli import main
from move.config import load_schema, validate_config
from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
from move.errors import MoveError
from move.reporting.tables import methods_table
from move.training.loop import train
from move.training.methods import (
    get_method,
    method_names,
    resolve_settings,
    variant_names,
    variant_settings,
)
from move.training.methods.cbs import class_balanced_order
from move.training.methods.common import BASELINE, shuffled
from move.training.registry import Method, register_method, setting, unregister_method
from move.training.settings import TrainSettings
from tests.conftest import REPO, tiny_train
from tests.example_method import FOCAL_CB

TINY_MODEL = tiny_train(frames_train=6, frames_test=6)


@pytest.fixture
def focal_registered():
    register_method(FOCAL_CB)
    yield FOCAL_CB
    unregister_method(FOCAL_CB.name)


@pytest.fixture
def features(tmp_path):
    spec = SyntheticSpec(classes=4, n_max=10, test_per_class=3, frames=6, dim=16, seed=0)
    make_synthetic_features(tmp_path / "f.h5", tmp_path / "split.csv", spec)
    return tmp_path / "f.h5", tmp_path / "split.csv"


def test_schema_method_lists_are_the_registrys():
    schema = load_schema()
    assert schema["$defs"]["train"]["properties"]["method"]["enum"] == list(method_names())
    table = schema["properties"]["table"]["properties"]["methods"]["items"]["enum"]
    assert table == list(variant_names())
    assert variant_names()[:2] == ("plain", "plain_agg") and "move_agg" not in variant_names()
    assert method_names() == (
        "plain", "ldam_drw", "eql", "cbs", "cb_loss", "mixup", "framestack", "move",
        "logit_adjusted_loss", "logit_adjustment_post_hoc", "crt", "tau_norm", "lws",
        "weight_balancing",
    )  # fmt: skip


def test_each_methods_settings_section_is_generated_from_its_dataclass():
    train = load_schema()["$defs"]["train"]["properties"]
    ldam = train["ldam_drw"]["properties"]
    assert ldam["drw_epoch"] == {
        "default": 50, "description": "epoch from which DRW re-weights", "minimum": 0,
        "type": "integer",
    }  # fmt: skip
    assert train["move"]["properties"]["dfs_scope"]["enum"] == ["per_sample", "first_sample"]
    assert train["plain"]["properties"] == {}  # no hyperparameters, an empty section
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["train"]["ldam_drw"] = {"drw_epoch": -1}
    with pytest.raises(MoveError, match=r"train\.ldam_drw\.drw_epoch'.*minimum of 0"):
        validate_config(config)
    config["train"]["ldam_drw"] = {"margin": 1}
    with pytest.raises(MoveError, match="unknown key.*margin.*allowed: beta, drw_epoch"):
        validate_config(config)


def test_variants_map_to_method_and_aggregators():
    assert variant_settings("cb_loss_agg") == {"method": "cb_loss", "aggregators": True}
    assert variant_settings("eql") == {"method": "eql", "aggregators": False}
    assert variant_settings("move") == {"method": "move", "aggregators": True}
    assert len(variant_names()) == 27  # the paper's 15, then the extended table's 12
    with pytest.raises(MoveError, match="unknown method variant"):
        variant_settings("focal")


def test_settings_are_filled_in_once_and_recorded_under_the_methods_name():
    settings = TrainSettings.from_dict({"method": "ldam_drw", "ldam_drw": {"drw_epoch": 3}})
    method, resolved = resolve_settings(settings)
    assert method is get_method("ldam_drw")
    assert resolved.to_dict()["ldam_drw"] == {
        "max_margin": 0.5, "scale": 30.0, "drw_epoch": 3, "beta": 0.9999
    }  # fmt: skip
    assert TrainSettings.from_dict(resolved.to_dict()) == resolved  # checkpoints round-trip
    with pytest.raises(MoveError, match=r"train setting 'move': unknown key\(s\) drw_epoch"):
        resolve_settings(TrainSettings.from_dict({"method": "move", "move": {"drw_epoch": 3}}))
    with pytest.raises(MoveError, match="needs aggregators"):
        resolve_settings(TrainSettings.from_dict({"method": "move", "aggregators": False}))


def test_registering_twice_or_a_bad_name_is_refused(focal_registered):
    with pytest.raises(ValueError, match="already registered"):
        register_method(FOCAL_CB)
    with pytest.raises(ValueError, match="_agg"):
        register_method(Method("x_agg", "X", FOCAL_CB.loss, FOCAL_CB.transform, shuffled))


def test_a_method_in_one_file_validates_trains_and_lands_in_the_table(
    focal_registered, features, tmp_path, capsys
):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["train"] |= {"method": "focal_cb", "focal_cb": {"gamma": 1.5}}
    config["table"] = {"methods": ["focal_cb", "focal_cb_agg", "move"]}
    validate_config(config)
    assert load_schema()["$defs"]["train"]["properties"]["focal_cb"]["properties"]["beta"]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "focal_cb_agg" in capsys.readouterr().out.replace("\n", " ").replace(" ", "")
    out = tmp_path / "focal.json"
    settings = TINY_MODEL | {"epochs": 2, "focal_cb": {"gamma": 1.5}}
    code = main(
        ["train", "--features", str(features[0]), "--split", str(features[1]),
         "--out", str(out), "--settings", json.dumps(settings), "--method", "focal_cb_agg",
         "--head-min", "8", "--tail-max", "3", "--dataset", "syn", "--imbalance-ratio", "0.1",
         "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    results = json.loads(out.read_text())
    assert results["variant"] == "focal_cb_agg" and results["dataset"] == "syn"
    assert results["settings"]["focal_cb"] == {"gamma": 1.5, "beta": 0.999}
    table = methods_table({"focal_cb_agg": out})
    assert table.method.tolist() == ["Focal + CB (example)"] and table["agg"].tolist() == ["✓"]


# --- a decoupled baseline (classifier re-training), defined by the test through the hooks ------
@dataclasses.dataclass(frozen=True)
class DecoupledSettings:
    """Stage 2 (classifier re-training, class-balanced) starts at ``retrain_epoch``."""

    retrain_epoch: int = setting(2, "first epoch of classifier re-training", minimum=1)


def decoupled_stage(epoch, options):
    return int(epoch >= options.retrain_epoch)


def decoupled_order(labels, n_classes, rng, epoch, options):
    """Instance-balanced in stage 1, class-balanced in stage 2."""
    if decoupled_stage(epoch, options):
        return class_balanced_order(labels, n_classes, rng, epoch, options)
    return shuffled(labels, n_classes, rng, epoch, options)


def decoupled_optimizer(model, context):
    """Stage 1: every parameter. Stage 2: the representation frozen, a re-initialised classifier."""
    if decoupled_stage(context.epoch, context.options):
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for layer in model.classifier.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        for parameter in model.classifier.parameters():
            parameter.requires_grad_(True)
        return torch.optim.Adam(model.classifier.parameters(), lr=context.settings.lr)
    return torch.optim.Adam(model.parameters(), lr=context.settings.lr)


DECOUPLED = Method(
    "decoupled_crt",
    "cRT (example)",
    **(BASELINE | {"sampler": decoupled_order}),
    settings=DecoupledSettings,
    configure_optimizer=decoupled_optimizer,
    stage=decoupled_stage,
    summary="classifier re-training with class-balanced sampling",
)


def test_a_decoupled_baseline_trains_through_the_hooks_without_loop_edits(features, tmp_path):
    register_method(DECOUPLED)
    try:
        changed = {}
        settings = TrainSettings.from_dict(
            TINY_MODEL | {"epochs": 4, "method": "decoupled_crt", "aggregators": True}
        )
        method, resolved = resolve_settings(settings)
        assert method.stage_of(1, method.options()) == 0 and method.stage_of(2, method.options())
        # Stage 1 (epochs 0-1), then stage 2 (epochs 2-3): train 2 epochs, then 4, and compare.
        two = tmp_path / "two.pt"
        stage_1 = dataclasses.replace(settings, epochs=2)
        train(*features, tmp_path / "two.json", two, stage_1, 8, 3, False)
        four = tmp_path / "four.pt"
        train(*features, tmp_path / "four.json", four, settings, 8, 3, False)
        after_stage_1 = torch.load(two, weights_only=False)["model"]
        after_stage_2 = torch.load(four, weights_only=False)["model"]
        for name, value in after_stage_1.items():
            changed[name] = not torch.equal(value, after_stage_2[name])
        classifier = [n for n in changed if n.startswith("classifier.") and n.endswith("weight")]
        representation = [
            n for n in changed if not n.startswith("classifier.") and n.endswith(("weight", "bias"))
        ]
        assert classifier and all(changed[n] for n in classifier)
        assert representation and not any(changed[n] for n in representation)
        results = json.loads((tmp_path / "four.json").read_text())
        assert results["settings"]["decoupled_crt"] == {"retrain_epoch": 2}
        assert resolved.method_settings == {"retrain_epoch": 2}
    finally:
        unregister_method(DECOUPLED.name)


# --- out-of-tree: a method of another package, found through the entry point -------------------
def install_plugin(folder):
    """Write ``tests/example_method.py`` as the package ``focal_plugin`` with a dist-info that
    declares it in the ``move.methods`` entry-point group (what ``pip install`` would leave)."""
    source = (REPO / "tests" / "example_method.py").read_text()
    (folder / "focal_plugin.py").write_text(source)
    info = folder / "focal_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: focal-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[move.methods]\nfocal_cb = focal_plugin:FOCAL_CB\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def test_a_method_of_another_package_is_found_through_its_entry_point(tmp_path):
    env = install_plugin(tmp_path)
    code = textwrap.dedent(
        """
        from move.config import load_schema
        from move.training.methods import method_names
        print(method_names()[-1], sorted(load_schema()["$defs"]["train"]["properties"]["focal_cb"]["properties"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["focal_cb", "['beta',", "'gamma']"]


def test_a_broken_entry_point_is_one_line_naming_it(tmp_path):
    env = install_plugin(tmp_path)
    (tmp_path / "focal_plugin.py").write_text("raise RuntimeError('broken on purpose')\n")
    done = subprocess.run(
        [sys.executable, "-m", "move", "check-config", str(REPO / "config.yaml")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error") or "focal_cb" in done.stderr
    assert "entry point 'focal_cb = focal_plugin:FOCAL_CB'" in done.stderr
    assert "broken on purpose" in done.stderr


@pytest.mark.slow
def test_an_out_of_tree_method_trains_through_the_workflow(tmp_path):
    """The plugin's method, named in the config with its own settings, trains via Snakemake."""
    (tmp_path / "plugin").mkdir()
    env = install_plugin(tmp_path / "plugin")
    work = tmp_path / "work"
    work.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"] |= {"classes": 4, "train_per_class": 6, "val_per_class": 2, "size": 32}
    demo = config["datasets"]["demo"]
    demo |= {
        "max_per_class": 6,
        "groups": {"head_min": 5, "tail_max": 2},
        "imbalance_ratios": [0.5],
    }
    demo["extract"] |= {"frames": 4, "resize": 40, "crop": 32}
    demo["train"] |= TINY_MODEL | {"epochs": 2, "frames_train": 4, "frames_test": 4}
    demo["train"] |= {"method": "focal_cb", "focal_cb": {"gamma": 1.0}}
    configfile = work / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakefile = ["-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile", str(configfile)]
    done = subprocess.run(
        ["snakemake", "results/demo_ir0.5.json", "--cores", "2", *snakefile],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((work / "results" / "demo_ir0.5.json").read_text())
    assert results["method"] == "focal_cb" and results["settings"]["focal_cb"]["gamma"] == 1.0


def test_declaring_and_listing_methods_and_validating_the_config_need_no_torch():
    """Planning (config validation, the schema, the method lists) imports no torch: by structure."""
    code = textwrap.dedent(
        f"""
        import sys, yaml
        from move.config import load_schema, validate_config
        from move.training.methods import method_names, variant_names
        validate_config(yaml.safe_load(open({str(REPO / "config.yaml")!r})))
        load_schema(); method_names(); variant_names()
        import move.training.results, move.reporting.tables
        print("torch" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
