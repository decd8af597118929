"""The config schema: the shipped config is valid; wrong keys/values are named in one line."""

from __future__ import annotations

import copy

import pytest
import yaml

from move.config import load_config, load_schema, required_path, stage_settings, validate_config
from move.errors import MoveError
from tests.conftest import REPO


@pytest.fixture()
def config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_shipped_config_is_valid(config):
    validate_config(config)
    assert load_config(REPO / "config.yaml") == config


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(sed=1), "config key '(top level)': unknown key(s) sed"),
        (lambda c: c.pop("backbone"), "config key 'backbone' is missing"),
        (lambda c: c.update(seeds=[0, 0]), "config key 'seeds'"),
        (lambda c: c["train"].update(method="magic"), "config key 'train.method': 'magic'"),
        (lambda c: c["train"].update(epochs="ten"), "config key 'train.epochs'"),
        (lambda c: c["datasets"]["demo"].update(imbalance_ratios=[0]), "imbalance_ratios[0]"),
        (lambda c: c["datasets"]["demo"].update(imbalance_ratios=[1.5]), "imbalance_ratios[0]"),
        (lambda c: c["extract"].update(device="tpu"), "config key 'extract.device'"),
        (lambda c: c["demo"].update(size=16), "config key 'demo.size'"),
    ],
)
def test_bad_values_name_the_key(config, edit, expected):
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(MoveError) as error:
        validate_config(bad)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_enum_error_lists_allowed_values(config):
    config["train"]["method"] = "magic"
    with pytest.raises(MoveError, match="choose one of .*move"):
        validate_config(config)


def test_dataset_settings_override_global_ones(config):
    merged = stage_settings(config, "demo", "train")
    assert merged["epochs"] == config["datasets"]["demo"]["train"]["epochs"]
    assert merged["lr"] == config["datasets"]["demo"]["train"]["lr"]
    assert merged["num_workers"] == config["datasets"]["demo"]["train"]["num_workers"]
    config = copy.deepcopy(config)
    config["train"]["lr_gamma"] = 0.5
    assert stage_settings(config, "demo", "train")["lr_gamma"] == 0.5  # global: the demo sets none
    with pytest.raises(MoveError, match="known: demo"):
        stage_settings(config, "nope", "train")


def test_unset_kinetics_path_names_the_key(config):
    with pytest.raises(MoveError, match="config key 'datasets.minikinetics.videos' is not set"):
        required_path(config, "minikinetics", "videos")


def test_missing_config_file(tmp_path):
    with pytest.raises(MoveError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_resolve_applies_the_schemas_defaults_once_per_dataset(config):
    from move.planning import resolve

    config = dict(config)
    config["datasets"] = {name: dict(entry) for name, entry in config["datasets"].items()}
    assert "max_missing_share" not in config["datasets"]["minikinetics"]
    assert "groups" not in config["datasets"]["videolt"]
    resolved = resolve(config)
    mini, demo = resolved.datasets["minikinetics"], resolved.datasets["demo"]
    assert mini.max_missing_share == 0.05  # the schema's default, stated there only
    assert mini.table_ir == 0.01 and mini.backbone == config["backbone"]
    assert demo.extract["shards"] == 1 and demo.extract["frames"] == 8  # own over global
    assert demo.train["epochs"] == 40 and demo.train["lr_milestones"] == [30]
    videolt = resolved.datasets["videolt"]  # its source's defaults (move/datasets/videolt/)
    assert videolt.groups == {"head_min": 501, "tail_max": 100} and videolt.imbalance_ratios == ()
    assert videolt.backbones == ("resnet50", "resnet101", "tsm_resnet50")
    assert videolt.ablation_backbone == "resnet101" and videolt.release["test_list"] == "test"
    assert resolved.table_methods[0] == "plain" and len(resolved.table_methods) == 27


def test_numbers_given_as_text_through_config_are_read_as_numbers(config):
    """Snakemake's --config hands list items and nested values over as text
    (`seeds=[0, 1, 2]` -> ['0', '1', '2']): where the schema asks for a number, an integer or a
    boolean, text that reads as one becomes one; other text is left for validation to refuse."""
    from move.config import coerce_command_line_values

    config["seeds"] = ["0", "1", "2", "3", "4"]
    config["train"].update(epochs="5", lr="1e-4", aggregators="false", grad_clip="20")
    config["datasets"]["demo"]["imbalance_ratios"] = ["0.1", "0.5"]
    coerce_command_line_values(config)
    assert config["seeds"] == [0, 1, 2, 3, 4]
    assert (config["train"]["epochs"], config["train"]["lr"]) == (5, 1e-4)
    assert config["train"]["aggregators"] is False and config["train"]["grad_clip"] == 20
    assert config["datasets"]["demo"]["imbalance_ratios"] == [0.1, 0.5]
    assert config["datasets"]["demo"]["videos"] == "data/demo/videos"  # text stays text
    validate_config(config)

    config["seeds"] = ["0", "one"]
    coerce_command_line_values(config)
    with pytest.raises(MoveError, match=r"config key 'seeds\[1\]': 'one' is not of type 'integer'"):
        validate_config(config)


def restated_defaults(instance, rule: dict, schema: dict, path: str = "") -> list[str]:
    """Keys of ``instance`` whose value equals the default its schema ``rule`` declares, found
    through ``$ref``, ``properties`` and ``additionalProperties`` maps."""
    if "$ref" in rule:
        rule = {**schema["$defs"][rule["$ref"].removeprefix("#/$defs/")], **rule}
        rule.pop("$ref")
    if not isinstance(instance, dict):
        return []
    found = []
    properties = rule.get("properties", {})
    extra = rule.get("additionalProperties")
    for key, value in instance.items():
        child = properties.get(key, extra if isinstance(extra, dict) else None)
        if child is None:
            continue
        resolved = child
        if "$ref" in child:
            resolved = {**schema["$defs"][child["$ref"].removeprefix("#/$defs/")], **child}
        if "default" in resolved and resolved["default"] == value:
            found.append(f"{path}{key}: {value!r}")
        else:
            found += restated_defaults(value, child, schema, f"{path}{key}.")
    return found


def test_the_shipped_config_restates_no_default():
    """config.yaml holds what differs from the schema's defaults (which docs/reference/
    configuration.md lists): a default restated there would hide which values are choices."""
    from move.config import load_schema, with_defaults

    schema = load_schema()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert restated_defaults({"a": {"b": 1, "c": 2}}, {"properties": {"a": {"properties": {
        "b": {"default": 1}, "c": {"default": 3}}}}}, schema) == ["a.b: 1"]  # fmt: skip
    sections = {"extract", "train"}  # a dataset's own ones override the top-level ones
    restated = restated_defaults(
        {k: v for k, v in config.items() if k != "datasets"}, schema, schema
    )
    for name, entry in config["datasets"].items():
        rules = schema["properties"]["datasets"]["additionalProperties"]
        own = {k: v for k, v in entry.items() if k not in sections}
        restated += restated_defaults(own, rules, schema, f"{name}.")
        for section in sections & set(entry):  # stating the top-level's value again
            top = with_defaults(config.get(section, {}), schema["$defs"][section], schema)
            restated += [
                f"{name}.{section}.{key}: {value!r}"
                for key, value in entry[section].items()
                if top.get(key) == value
            ]
    assert not restated, f"config.yaml restates defaults (drop them): {restated}"


def test_a_default_never_overrides_a_top_level_value(config):
    """A dataset's own train / extract section overrides the keys it states, and only those."""
    from move.planning import resolve

    config = copy.deepcopy(config)
    config["train"] |= {"method": "cb_loss", "lr_gamma": 0.5}
    config["extract"] |= {"min_decoded_share": 0.25}
    demo = resolve(config).datasets["demo"]
    assert demo.train["method"] == "cb_loss" and demo.train["lr_gamma"] == 0.5
    assert demo.train["epochs"] == 40  # its own
    assert demo.extract["min_decoded_share"] == 0.25 and demo.extract["frames"] == 8
    assert demo.extract["weights"]["resnet50"] == "none"  # its own weights over the defaults
    assert demo.extract["weights"]["tsm_resnet50"] == "none"
    assert resolve(config).datasets["minikinetics"].extract["weights"]["resnet50"] == "imagenet"


def test_the_workflow_schema_is_the_packages_and_snakemakes_validate_fills_its_defaults():
    """One schema file: workflow/schemas/ (where the Snakemake workflow template keeps it) links
    to the package's, and ``snakemake.utils.validate`` reads it and fills the defaults
    config.yaml leaves out."""
    from snakemake.utils import validate

    from move.config import SCHEMA_PATH

    linked = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert linked.resolve() == SCHEMA_PATH.resolve()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert "epochs" not in config["train"]
    validate(config, str(linked), set_default=True)
    assert config["train"]["epochs"] == 100 and config["extract"]["shards"] == 1


def test_effective_config_states_every_default_and_each_datasets_own_settings():
    """figures/config.yaml (rule effective_config) says what the jobs ran with: config.yaml
    restates no default, so the defaults are filled in, and each dataset's train/extract is the
    top-level section with its own keys over it."""
    from move.planning import effective_config

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    effective = effective_config(copy.deepcopy(config))
    schema_train = load_schema()["$defs"]["train"]["properties"]
    assert "lr" not in config.get("train", {})  # a default, left unsaid in config.yaml
    assert effective["train"]["lr"] == schema_train["lr"]["default"]
    demo = effective["datasets"]["demo"]
    assert demo["train"]["lr"] == config["datasets"]["demo"]["train"]["lr"]  # its own key
    assert demo["train"]["precision"] == schema_train["precision"]["default"]
    minikinetics = effective["datasets"]["minikinetics"]["train"]
    assert minikinetics["num_workers"] == config["train"]["num_workers"]  # top level, not default
    assert effective["split"]["selection"] == "first"


def test_the_stages_settings_and_the_schema_declare_the_same_defaults():
    """``move extract`` / ``move train`` (their settings dataclasses) and the workflow (the
    schema) default alike: 150 frames, not 8 on the command line and 150 in the workflow."""
    import dataclasses

    from move.extraction.settings import ExtractSettings
    from move.training.settings import TrainSettings

    schema = load_schema()["$defs"]
    differ = []
    for settings, section in ((ExtractSettings, "extract"), (TrainSettings, "train")):
        rules = schema[section]["properties"]
        for field in dataclasses.fields(settings):
            if field.name not in rules or "default" not in rules[field.name]:
                continue
            value = field.default
            if field.default_factory is not dataclasses.MISSING:
                value = field.default_factory()
            if field.name == "weights":  # per backbone in the schema, None (named) here
                assert value is None
                continue
            if (list(value) if isinstance(value, tuple) else value) != rules[field.name]["default"]:
                differ.append(
                    f"{section}.{field.name}: {value!r} vs {rules[field.name]['default']!r}"
                )
    assert not differ, differ
    assert ExtractSettings().frames == schema["extract"]["properties"]["frames"]["default"] == 150


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"grad_clip": "x"}, "'grad_clip': 'x' is not allowed (use method, none, a number > 0)"),
        ({"checkpoint_dtype": "int8"}, "'checkpoint_dtype': 'int8' is not allowed"),
        ({"features_on_device": 2}, "'features_on_device': 2 is greater than the maximum of 1"),
        ({"resume_every_minutes": -1}, "'resume_every_minutes': -1 is less than the minimum"),
    ],
)
def test_train_settings_refuse_what_the_schema_refuses_in_its_words(values, message):
    """TrainSettings checks its values against the schema (one place for the ranges), so a run
    started from Python or a results file is refused as a config would be."""
    from move.errors import MoveError
    from move.training.settings import TrainSettings

    with pytest.raises(MoveError) as error:
        TrainSettings.from_dict(values)
    assert message in str(error.value) and str(error.value).startswith("train setting")
