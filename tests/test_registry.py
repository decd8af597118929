"""The method registry is the one list: a method registered in one place trains, validates in the
config, is offered by the CLI and lands in the tables (example method defined here, not in move/)."""

import json

import pytest
import yaml

from move.cli import main
from move.config import load_schema, validate_config
from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
from move.errors import MoveError
from move.reporting.tables import methods_table
from move.training import Method, method_names, register_method, variant_names, variant_settings
from move.training.losses import focal_loss
from move.training.methods import plain_transform, shuffled
from move.training.registry import unregister_method
from tests.conftest import REPO


# --- a new baseline: this block is all it takes ------------------------------------------------
def focal_gamma_two(logits, targets, batch, context):
    """Focal loss with gamma 2 on the plain forward pass."""
    return focal_loss(logits, targets, gamma=2.0)


FOCAL = Method(
    name="focal_example",
    display="Focal (example)",
    loss=focal_gamma_two,
    transform=plain_transform,
    sampler=shuffled,
    grad_clip=20.0,
    summary="focal loss, gamma 2",
)
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def focal_registered():
    register_method(FOCAL)
    yield FOCAL
    unregister_method(FOCAL.name)


def test_schema_method_lists_are_the_registrys():
    schema = load_schema()
    assert schema["$defs"]["train"]["properties"]["method"]["enum"] == list(method_names())
    table = schema["properties"]["table"]["properties"]["methods"]["items"]["enum"]
    assert table == list(variant_names())
    assert variant_names()[:2] == ("plain", "plain_agg") and "move_agg" not in variant_names()


def test_variants_map_to_method_and_aggregators():
    assert variant_settings("cb_loss_agg") == {"method": "cb_loss", "aggregators": True}
    assert variant_settings("eql") == {"method": "eql", "aggregators": False}
    assert variant_settings("move") == {"method": "move", "aggregators": True}
    assert len(variant_names()) == 15
    with pytest.raises(MoveError, match="unknown method variant"):
        variant_settings("focal")


def test_registering_twice_or_a_bad_name_is_refused(focal_registered):
    with pytest.raises(ValueError, match="already registered"):
        register_method(FOCAL)
    with pytest.raises(ValueError, match="_agg"):
        register_method(Method("x_agg", "X", FOCAL.loss, FOCAL.transform, FOCAL.sampler))


def test_a_registered_method_validates_trains_and_lands_in_the_table(
    focal_registered, tmp_path, capsys
):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["train"]["method"] = "focal_example"
    config["table"]["methods"] = ["focal_example", "focal_example_agg", "move"]
    validate_config(config)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "focal_example_agg" in capsys.readouterr().out.replace("\n", " ").replace(" ", "")
    spec = SyntheticSpec(classes=4, n_max=10, test_per_class=3, frames=6, dim=16, seed=0)
    make_synthetic_features(tmp_path / "f.h5", tmp_path / "split.csv", spec)
    settings = {
        "epochs": 2, "batch_size": 8, "frames_train": 6, "frames_test": 6, "eval_every": 1,
        "heads": 2, "d_k": 4, "d_v": 4, "clusters": 3, "codebook_dim": 8, "hidden_dim": 16,
        "device": "cpu",
    }  # fmt: skip
    out = tmp_path / "focal.json"
    code = main(
        ["train", "--features", str(tmp_path / "f.h5"), "--split", str(tmp_path / "split.csv"),
         "--out", str(out), "--settings", json.dumps(settings), "--method", "focal_example_agg",
         "--head-min", "8", "--tail-max", "3", "--dataset", "syn", "--imbalance-ratio", "0.1",
         "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    results = json.loads(out.read_text())
    assert results["variant"] == "focal_example_agg" and results["dataset"] == "syn"
    assert results["imbalance_ratio"] == 0.1 and results["settings"]["grad_clip"] == "method"
    table = methods_table({"focal_example_agg": out})
    assert table.method.tolist() == ["Focal (example)"] and table["agg"].tolist() == ["✓"]
