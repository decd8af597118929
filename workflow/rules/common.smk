# Config loading and validation, and the small input functions the rules share.
import json
import os
import sys

from move.config import required_path, stage_settings, validate_config
from move.errors import MoveError


def stop(error):
    """End the run with the error's one-line message (no traceback): the user's input is wrong."""
    print(f"Error: {error}", file=sys.stderr)
    sys.exit(1)


# Rules run `python -m move` with this repository's package first on the path, so jobs use the
# checkout's code inside any environment (a conda env from envs/, a SLURM node).
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])
)

try:
    validate_config(config, source="config")
except MoveError as error:
    stop(error)


wildcard_constraints:
    dataset="(?!videolt\\b)[A-Za-z][A-Za-z0-9]*",  # VideoLT has its own rules
    backbone="[A-Za-z0-9_]+",
    ir="[0-9]*\\.?[0-9]+",


def dataset_input(key):
    """Input function: a dataset's configured path (videos/annotations); unset -> one-line error."""

    def resolve(wildcards):
        try:
            return required_path(config, wildcards.dataset, key)
        except MoveError as error:
            stop(error)

    return resolve


def settings(stage):
    """Params function: the effective settings of a stage for the wildcard's dataset."""
    return lambda wildcards: stage_settings(config, wildcards.dataset, stage)


def groups(wildcards):
    return config["datasets"][wildcards.dataset]["groups"]


def train_backbone(dataset):
    return config["datasets"][dataset].get("backbone", config["backbone"])


def backbone_weights(wildcards):
    weights = stage_settings(config, wildcards.dataset, "extract").get("weights", {})
    return weights.get(wildcards.backbone, "none")


def default_targets():
    """`snakemake` with no target: the demo at each of its imbalance ratios."""
    return [f"results/demo_ir{ir}.json" for ir in config["datasets"]["demo"]["imbalance_ratios"]]


# Methods table (workflow/rules/train.smk): per-variant settings, the table IR, the variants.
def variant_settings_json(wildcards):
    from move.training.registry import variant_settings

    values = stage_settings(config, wildcards.dataset, "train")
    try:
        values.update(variant_settings(wildcards.variant))
    except MoveError as error:
        stop(error)
    return json.dumps(values)


def table_ir(dataset):
    entry = config["datasets"][dataset]
    return entry.get("table_ir", entry["imbalance_ratios"][0])


def table_methods():
    from move.training.registry import variant_names

    return config.get("table", {}).get("methods", list(variant_names()))


# Splits from the authors' lists (workflow/rules/splits.smk).
def dataset_list_source(dataset, name):
    """Param: URL or path of a dataset's list (datasets.<d>.lists.<name>); unset -> one-line error."""
    source = (config["datasets"][dataset].get("lists") or {}).get(name)
    if not source:
        stop(
            MoveError(
                f"config key 'datasets.{dataset}.lists.{name}' is not set: give the URL or path "
                "of the authors' list"
            )
        )
    return source


def dataset_list_sha256(dataset, name):
    """Param: '--sha256 <hex>' when datasets.<d>.lists.sha256.<name> pins the list, else ''."""
    pinned = ((config["datasets"][dataset].get("lists") or {}).get("sha256") or {}).get(name)
    return f"--sha256 {pinned}" if pinned else ""


def kinetics_annotations(wildcards):
    """Input: the Kinetics-400 CSV(s) of datasets.<d>.kinetics_annotations; unset -> one-line error."""
    value = config["datasets"][wildcards.dataset].get("kinetics_annotations")
    if not value:
        stop(
            MoveError(
                f"config key 'datasets.{wildcards.dataset}.kinetics_annotations' is not set: "
                "point it at the Kinetics-400 annotation CSV(s)"
            )
        )
    return [value] if isinstance(value, str) else list(value)


def max_missing_share(dataset):
    return config["datasets"][dataset].get("max_missing_share", 0.05)


def class_order_option(wildcards):
    path = config["datasets"][wildcards.dataset].get("class_order")
    return f"--class-order {path}" if path else ""


# VideoLT (workflow/rules/videolt.smk).
def videolt_features_dir(wildcards):
    """Input: the folder of VideoLT's .npy features for a backbone; unset -> one-line error."""
    folder = (videolt_setting("features", {}) or {}).get(wildcards.backbone)
    if not folder:
        stop(
            MoveError(
                f"config key 'videolt.features.{wildcards.backbone}' is not set: point it at "
                "the folder of VideoLT's released .npy features for that backbone"
            )
        )
    return folder


def videolt_labels_dir(wildcards):
    """Input: VideoLT's label folder (train.lst, test.lst, count-labels-train.lst)."""
    if not videolt_setting("labels", None):
        stop(MoveError("config key 'videolt.labels' is not set: point it at VideoLT's label folder"))
    return videolt_setting("labels", None)


def videolt_setting(key, default):
    """A key of the config's videolt section, or its default."""
    return (config.get("videolt") or {}).get(key, default)
