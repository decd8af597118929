"""The data-source registry: how a dataset's data come in, and what planning needs to know of it.

A dataset entry of config names its source (``datasets.<name>.source``; without it, ``videos``):
a folder of videos or frame folders, the authors' per-video ``.npy`` features, the Kinetics-400
mirror, or VideoLT's release. The entry (``DataSource``) carries what planning reads instead of
the dataset's name: whether splits are drawn at imbalance ratios or the data come with their own
split, whether labels are multi-label, which rule makes its feature files, the memory and time
class of its training runs, the config keys it reads and the defaults it brings. Planning, the
targets' checks and the workflow ask ``dataset_source``; no module compares a dataset's name.

Reads nothing but config dicts (no torch, no files): planning imports it. Registering fills the
schema's ``source`` enum and each source's required and refused keys (``fill_schema``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from move.config import register_schema_part
from move.datasets import videolt
from move.errors import MoveError

# The keys a dataset with splits drawn at imbalance ratios needs (the schema's required ones).
DRAWN_SPLIT_KEYS = ("annotations", "imbalance_ratios", "max_per_class", "groups")
DEFAULT_SOURCE = "videos"


@dataclass(frozen=True)
class DataSource:
    """One way a dataset's data come in, and what that means for its runs.

    ``imbalance_ratios``: splits are drawn at the configured ratios (runs
    ``<dataset>/<backbone>/ir<IR>``); False: the data come with their own train/test split (runs
    ``<dataset>/<backbone>``, results ``results/<dataset>_<backbone>.json``).
    ``features_rule``: the rule writing ``features/<dataset>/<backbone>.h5``;
    ``converted_release``: that rule converts a release (features and labels together) into the
    feature file and the split, rather than videos or per-backbone .npy folders (rule
    npy_features) into features the splits are drawn from. ``weights_guarded``: its features
    come from a backbone's configured weights, so the Kinetics leak guard applies.
    ``run_memory_mb`` / ``run_minutes``: what one training run asks of a cluster.
    ``config_keys``: the keys of the dataset entry saying where its data are (a release's
    conversion gets exactly these). ``required`` / ``refused``: keys the dataset entry must
    state / must not (the schema checks both); ``defaults``: values of its keys when the entry
    leaves them out.
    """

    name: str
    summary: str
    imbalance_ratios: bool = True
    multi_label: bool = False
    features_rule: str = "extract"
    converted_release: bool = False
    weights_guarded: bool = True
    run_memory_mb: int = 32000
    run_minutes: int = 6 * 60
    config_keys: tuple[str, ...] = ()
    required: tuple[str, ...] = DRAWN_SPLIT_KEYS
    refused: tuple[str, ...] = ()
    defaults: Mapping = field(default_factory=dict)


_SOURCES: dict[str, DataSource] = {}


def register_source(source: DataSource) -> DataSource:
    """Add a data source (its name must be new)."""
    if source.name in _SOURCES:
        raise ValueError(f"data source {source.name!r} is already registered")
    _SOURCES[source.name] = source
    return source


register_source(
    DataSource(
        "videos",
        "a folder of videos or of frame folders (any Kinetics layout); features extracted by "
        "rule extract, or per backbone converted from `features` (.npy)",
        config_keys=("videos", "annotations", "features"),
        required=("videos", *DRAWN_SPLIT_KEYS),
    )
)
register_source(
    DataSource(
        "npy_features",
        "the authors' per-video <video_id>.npy features, one folder per backbone (`features`), "
        "converted by rule npy_features",
        features_rule="npy_features",
        config_keys=("features", "annotations"),
        required=("features", *DRAWN_SPLIT_KEYS),
    )
)
register_source(
    DataSource(
        "kinetics_mirror",
        "Kinetics-400 videos fetched from the mirror's tar.gz shards (`kinetics_mirror`, rule "
        "fetch_kinetics into data/<dataset>/kinetics_videos), then extracted",
        config_keys=("kinetics_mirror", "annotations"),
        required=("kinetics_mirror", *DRAWN_SPLIT_KEYS),
    )
)
register_source(
    DataSource(
        videolt.SOURCE,
        "VideoLT's release: per-video .npy features per backbone (`features`) and its label "
        "lists (`labels`), converted by rule videolt_features; multi-label, its own split",
        imbalance_ratios=False,
        multi_label=True,
        features_rule="videolt_features",
        converted_release=True,
        weights_guarded=False,
        run_memory_mb=64000,  # 1004 classes, 180k videos: twice a MiniKinetics200 run
        run_minutes=24 * 60,
        config_keys=("features", "labels", "test_list", "dtype", "groups", "max_missing_share"),
        required=("features", "labels"),
        refused=("videos", "annotations", "imbalance_ratios", "max_per_class", "table_ir"),
        defaults=MappingProxyType(videolt.DEFAULTS),
    )
)


def source_names() -> tuple[str, ...]:
    """Every registered data source, in registration order."""
    return tuple(_SOURCES)


def get_source(name: str) -> DataSource:
    """The source called ``name``, or a one-line error listing the known ones."""
    if name not in _SOURCES:
        raise MoveError(
            f"unknown data source '{name}' (config key 'datasets.<name>.source'): choose one of "
            f"{', '.join(_SOURCES)}"
        )
    return _SOURCES[name]


def source_of(entry: Mapping) -> DataSource:
    """The source of a dataset entry of config: its ``source``, else what its keys say (the
    Kinetics mirror when it has path lists and no videos, the .npy features when it has only
    those, else videos)."""
    if entry.get("source"):
        return get_source(entry["source"])
    if not entry.get("videos"):
        if (entry.get("kinetics_mirror") or {}).get("path_lists"):
            return _SOURCES["kinetics_mirror"]
        if any((entry.get("features") or {}).values()):
            return _SOURCES["npy_features"]
    return _SOURCES[DEFAULT_SOURCE]


def dataset_source(config: Mapping, dataset: str) -> DataSource | None:
    """The source of a configured dataset; None for a dataset config does not name."""
    entry = (config.get("datasets") or {}).get(dataset)
    return None if entry is None else source_of(entry)


def with_source_defaults(entry: Mapping) -> dict:
    """A dataset entry with its source's defaults where it leaves a key out."""
    defaults = source_of(entry).defaults
    return {**{k: copy.deepcopy(v) for k, v in defaults.items() if k not in entry}, **entry}


def fill_schema(schema: dict) -> dict:
    """The schema's data-source parts from this registry, in place (returns ``schema``): the
    ``source`` enum, per source the keys a dataset entry must state and must not, and the
    top-level keys that moved (``x-moved``: key -> how to move it; validation refuses them)."""
    dataset = schema["properties"]["datasets"]["additionalProperties"]
    dataset["properties"]["source"]["enum"] = list(source_names())
    rules = []
    for source in _SOURCES.values():
        named = {"properties": {"source": {"const": source.name}}, "required": ["source"]}
        if source.name == DEFAULT_SOURCE:
            named = {"anyOf": [named, {"not": {"required": ["source"]}}]}
        then: dict = {"required": list(source.required)}
        if source.refused:
            own = "" if source.imbalance_ratios else " (its own split, no imbalance ratios)"
            why = {
                "not": {},
                "description": f"a {source.name} dataset does not use it{own}: remove it",
            }
            then["properties"] = {key: why for key in source.refused}
        rules.append({"if": named, "then": then})
    dataset["allOf"] = rules
    schema["x-moved"] = dict(videolt.MOVED_KEYS)
    return schema


register_schema_part("sources", fill_schema, source_names)
