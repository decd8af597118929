"""The workflow's file layout, written once: every file the rules make, as a pattern whose
``{fields}`` are Snakemake wildcards in the rules (their outputs), ``str.format`` fields in the
code (planning's run files), and named groups in the target checks (``regex``).

On the ground floor: plain strings, no imports from the package. ``docs/layouts/`` describes what
each file holds.
"""

from __future__ import annotations

import re

# Inputs fetched or derived once per dataset (data/<dataset>/...).
LIST = "data/{dataset}/lists/{name}"  # the authors' train.txt / val.txt, kinetics<i>.csv
KINETICS_LIST = "data/{dataset}/lists/kinetics{index}.csv"
LIST_ANNOTATIONS = "data/{dataset}/list_annotations.csv"
MIRROR_VIDEOS = "data/{dataset}/kinetics_videos"  # the Kinetics-400 mirror's videos
MIRROR_COMPLETE = MIRROR_VIDEOS + ".complete"
DEMO_VIDEOS = "data/demo/videos"
DEMO_ANNOTATIONS = "data/demo/annotations.csv"

# Features: one HDF5 file per (dataset, backbone), its failures beside it; shards merged into it.
FEATURE_STEM = "features/{dataset}/{backbone}"
FEATURES = FEATURE_STEM + ".h5"
FEATURE_FAILURES = FEATURE_STEM + ".failures.csv"
FEATURE_SHARD = FEATURE_STEM + ".shard{i}of{n}.h5"
FEATURE_SHARD_FAILURES = FEATURE_STEM + ".shard{i}of{n}.failures.csv"
# The same files named by one wildcard holding "<dataset>/<backbone>" (rule npy_features: only
# some pairs come from .npy files, which one wildcard's constraint can say).
PAIR_FEATURES = "features/{pair}.h5"
PAIR_FAILURES = "features/{pair}.failures.csv"

# Splits: drawn at an imbalance ratio ({lists}: "" or "lists/" for a split from the lists
# alone; {drawn}: "" or "_seed<k>" when drawn per seed), or a dataset's own (VideoLT's release).
MISSING = "splits/{dataset}_missing.csv"
SPLIT = "splits/{lists}{dataset}_ir{ir}{drawn}.csv"
SPLIT_CLASS_COUNTS = "splits/{lists}{dataset}_ir{ir}{drawn}.class_counts.csv"
OWN_SPLIT = "splits/{dataset}_{backbone}.csv"

# Runs: a dataset's features of a backbone at an IR, or of a dataset with its own split.
RUN = "{dataset}/{backbone}/ir{ir}"
OWN_SPLIT_RUN = "{dataset}/{backbone}"
RUN_FILES = "results/{run}/{variant}/seed{seed}"  # + .json, .per_class.csv, .pt
RESULT = RUN_FILES + ".json"
RESULT_PER_CLASS = RUN_FILES + ".per_class.csv"
CHECKPOINT = RUN_FILES + ".pt"
# The short targets: the configured backbone, variant and seed of a run
# (results/<dataset>_ir<IR>.json; results/<dataset>_<backbone>.json without IRs).
MAIN_RESULT = "results/{short}.json"
MAIN_PER_CLASS = "results/{short}.per_class.csv"
SHORT = "{dataset}_ir{ir}"
OWN_SPLIT_SHORT = "{dataset}_{backbone}"
TABLE = "results/{dataset}_{table}.{format}"  # format: md or csv

# Figures and the report.
FIGURE_ROOT = "figures"
FIGURES = FIGURE_ROOT + "/{dataset}"  # a dataset's figures over its runs
IR_FIGURES = FIGURE_ROOT + "/{dataset}_ir{ir}"  # the figures of its main run at one IR
FIGURE = "{folder}/{figure}.png"  # folder: FIGURES or IR_FIGURES
FIGURE_NUMBERS = "{folder}/{figure}.csv"  # the numbers it draws
EFFECTIVE_CONFIG = FIGURE_ROOT + "/config.yaml"


class _KeptFields(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(pattern: str, **values: str) -> str:
    """``pattern`` with some fields given, the others kept as fields: a rule's own wildcard names
    (``fill(FEATURES, dataset="{own_split_dataset}")`` is
    ``features/{own_split_dataset}/{backbone}.h5``) or a fixed part (``name="train.txt"``)."""
    return pattern.format_map(_KeptFields(values))


def regex(pattern: str, anchored: bool = True, **fields: str) -> str:
    """A regular expression matching the paths of ``pattern`` (whole paths when ``anchored``):
    each field by its expression in ``fields`` (a named group where the caller reads it), else
    by any text without a slash."""
    parts = re.split(r"\{(\w+)\}", pattern)
    body = "".join(
        re.escape(part) if index % 2 == 0 else fields.get(part, "[^/]+")
        for index, part in enumerate(parts)
    )
    return f"^{body}$" if anchored else body
