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
    dataset="[A-Za-z][A-Za-z0-9]*",
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
    from move.tables import variant_settings

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
    from move.tables import VARIANTS

    return config.get("table", {}).get("methods", list(VARIANTS))
