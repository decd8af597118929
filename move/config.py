"""The workflow's one configuration, on the ground floor: the schema (package data), validation
against it, its defaults, and per-dataset settings. Imports no stage.

Reads ``config.yaml`` (or a dict Snakemake loaded) and ``move/schemas/config.schema.yaml``, shipped
inside the package (``workflow/schemas/config.schema.yaml`` links to it). The schema's registry
parts (methods, variants, backbones) are written into that file by ``move docs`` from the
built-in registries; a stage's registry, once imported, registers how it fills its parts
(``register_schema_part``), so methods and backbones registered since (entry points, tests) are
valid too. A wrong key or value raises ``MoveError`` with one line naming the key and what is
allowed.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Hashable
from pathlib import Path

import jsonschema
import yaml

from move import layout
from move.errors import MoveError
from move.validation import check_batch_size, describe_error

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
# How each stage fills its parts of the schema, and what its registry holds now (the cache key):
# registered by the stage's registry on import (``move.training.methods``,
# ``move.extraction.backbones``), never imported from here.
_SCHEMA_PARTS: dict[str, tuple[Callable[[dict], dict], Callable[[], Hashable]]] = {}


def register_schema_part(
    name: str, fill: Callable[[dict], dict], state: Callable[[], Hashable]
) -> None:
    """Let a stage fill its part of the schema (``fill(schema)``, in place) from its registry;
    ``state()`` says what the registry holds now, so the schema is read again when it changes."""
    _SCHEMA_PARTS[name] = (fill, state)


def read_schema_file(path: str | Path = SCHEMA_PATH) -> dict:
    """The schema file as shipped: the registry parts of the built-in methods and backbones."""
    return yaml.safe_load(Path(path).read_text())


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config JSON schema (YAML on disk), its registry parts filled by every stage whose
    registry is loaded (``register_schema_part``); a fresh copy the caller may change."""
    if Path(path) != SCHEMA_PATH:
        return _with_parts(read_schema_file(path))
    return copy.deepcopy(_shipped_schema())


def _with_parts(schema: dict) -> dict:
    for fill, _ in _SCHEMA_PARTS.values():
        fill(schema)
    return schema


def _shipped_schema() -> dict:
    """The shipped schema with the registered parts, read once per registry state (tests and
    entry points register more). Not to be changed: ``load_schema`` hands out copies."""
    state = tuple((name, part[1]()) for name, part in sorted(_SCHEMA_PARTS.items()))
    return _schema_for_state(state)


@functools.lru_cache(maxsize=8)
def _schema_for_state(state: tuple) -> dict:
    return _with_parts(read_schema_file())


_TEXT_PARSERS = {
    "integer": int,
    "number": float,
    "boolean": {"true": True, "false": False}.__getitem__,
}


def _parse_text(text: str, types: list[str]):
    """``text`` as the first of the schema's ``types`` it reads as, or ``None``."""
    for kind in ("integer", "number", "boolean"):
        if kind in types:
            try:
                return _TEXT_PARSERS[kind](text.strip().lower() if kind == "boolean" else text)
            except (KeyError, ValueError):
                continue
    return None


def _text_type_errors(errors):
    """The type errors of ``errors`` and of their ``oneOf``/``anyOf`` branches, depth first."""
    for error in errors:
        if error.validator == "type" and isinstance(error.instance, str):
            yield error
        yield from _text_type_errors(error.context or [])


def coerce_command_line_values(config: dict, schema: dict | None = None) -> dict:
    """Turn numbers and booleans that arrive as text where the schema asks for one into that
    type, in place; returns ``config``.

    Snakemake's ``--config`` reads a value's lists and mappings with YAML's base loader, so
    ``seeds=[0, 1, 2]`` arrives as ``['0', '1', '2']`` and ``train={epochs: 5}`` as
    ``{'epochs': '5'}``; config.yaml read by Snakemake keeps its types and is left as it is.
    Text that does not read as the type is left for validation to refuse, naming the key.
    """
    validator = jsonschema.Draft202012Validator(schema or _shipped_schema())
    for _ in range(1000):  # each pass fixes at least one value; a config has fewer
        changed = False
        for error in _text_type_errors(validator.iter_errors(config)):
            types = error.validator_value
            value = _parse_text(error.instance, [types] if isinstance(types, str) else types)
            path = list(error.absolute_path)
            if value is None or not path:
                continue
            parent = config
            for part in path[:-1]:
                parent = parent[part]
            if parent[path[-1]] == error.instance:
                parent[path[-1]] = value
                changed = True
        if not changed:
            return config
    return config


def validate_config(config: dict, schema: dict | None = None, source: str = "config") -> None:
    """Raise ``MoveError`` naming the first invalid key (the one deepest in the tree); a key
    that moved (the schema's ``x-moved``) stops with how to move it."""
    schema = schema or _shipped_schema()
    for key, how in (schema.get("x-moved") or {}).items():
        if key in config:
            raise MoveError(f"{source}: config key '{key}' has moved: {how}")
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise MoveError(f"{source}: {describe_error(error)}")
    try:
        check_consistency(config, schema)
    except MoveError as error:
        raise MoveError(f"{source}: {error}") from None


def check_settings(values: dict, section: str, noun: str) -> None:
    """Refuse a stage's settings given outside config (``--settings``, ``--frames``) that the
    schema's ``$defs/<section>`` would refuse, naming the allowed range.

    Keys the section does not define (and object-valued ones but the methods' sections) are left
    to the caller; ``seed`` is checked as the top-level key.
    """
    schema = _shipped_schema()
    methods = schema["$defs"]["train"]["properties"]["method"].get("enum", [])
    properties = {
        key: rule
        for key, rule in schema["$defs"][section]["properties"].items()
        if rule.get("type") != "object" or key in methods
    }
    properties["seed"] = schema["properties"]["seed"]
    known = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in values.items()
        if key in properties
    }
    validator = jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "properties": properties}
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(known))
    if error is not None:
        raise MoveError(describe_error(error, noun))


def _uses_aggregators(train: dict, config: dict, schema: dict) -> bool:
    """Whether a dataset's training or one of its table's methods runs the aggregators (the
    schema's ``$defs.aggregator_variants`` / ``aggregator_methods``, from the method registry)."""
    variants = schema["properties"]["table"]["properties"]["methods"]["items"].get("enum", [])
    with_aggregators = schema["$defs"]["aggregator_variants"]["enum"]
    methods = (config.get("table") or {}).get("methods") or variants
    in_table = any(m in with_aggregators for m in methods)
    needs = train.get("method", "move") in schema["$defs"]["aggregator_methods"]["enum"]
    return bool(train.get("aggregators", True)) or needs or in_table


def check_consistency(config: dict, schema: dict | None = None) -> None:
    """Rules across keys that the schema cannot state, each one line naming the key and range:
    head_min > tail_max, imbalance ratios that leave the tail classes a video, and the batch
    size the aggregators need."""
    datasets = config.get("datasets", {})
    groups = [(f"datasets.{name}", e["groups"]) for name, e in datasets.items() if "groups" in e]
    for key, group in groups:
        if group["head_min"] <= group["tail_max"]:
            raise MoveError(
                f"config key '{key}.groups': head_min ({group['head_min']}) must be greater than "
                f"tail_max ({group['tail_max']}); head is count >= head_min, tail <= tail_max"
            )
    for name, entry in datasets.items():
        if "imbalance_ratios" not in entry:  # a dataset with its own split
            continue
        ratios = [("imbalance_ratios", r) for r in entry["imbalance_ratios"]]
        for key, ratio in ratios + [("table_ir", entry.get("table_ir", 1))]:
            if math.floor(entry["max_per_class"] * ratio) < 1:
                raise MoveError(
                    f"config key 'datasets.{name}.{key}': {ratio} leaves the tail classes "
                    f"floor(max_per_class x {ratio}) = 0 videos: use ratios of at least "
                    f"1/max_per_class = {1 / entry['max_per_class']:.4g}"
                )
    trains = [(f"datasets.{name}.train", entry.get("train")) for name, entry in datasets.items()]
    for key, own in trains:
        train = {**config.get("train", {}), **(own or {})}
        if "batch_size" in train:
            where = key if "batch_size" in (own or {}) else "train"
            name = f"config key '{where}.batch_size'"
            uses = _uses_aggregators(train, config, schema or _shipped_schema())
            check_batch_size(train["batch_size"], uses, name)


def load_config(path: str | Path) -> dict:
    """Read and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"config file {path} not found")
    config = yaml.safe_load(path.read_text()) or {}
    validate_config(config, source=str(path))
    return config


def dataset_config(config: dict, dataset: str) -> dict:
    """The entry of ``dataset`` under ``datasets``, or a one-line error listing the known ones."""
    datasets = config.get("datasets", {})
    if dataset not in datasets:
        raise MoveError(
            f"dataset '{dataset}' is not in config key 'datasets' (known: {', '.join(sorted(datasets))})"
        )
    return datasets[dataset]


def stage_settings(config: dict, dataset: str, stage: str) -> dict:
    """Global ``config[stage]`` updated with ``datasets.<dataset>.<stage>`` (dataset wins)."""
    merged = dict(config.get(stage, {}))
    merged.update(dataset_config(config, dataset).get(stage, {}) or {})
    return merged


def required_path(config: dict, dataset: str, key: str) -> str:
    """A dataset's input path; unset (null) stops with the config key to set. The videos of a
    dataset fetched from the Kinetics mirror (``kinetics_mirror``, no ``videos``) are
    ``mirror_videos(dataset)``."""
    entry = dataset_config(config, dataset)
    value = entry.get(key)
    if not value and key == "videos" and (entry.get("kinetics_mirror") or {}).get("path_lists"):
        return mirror_videos(dataset)
    if not value:
        hint = (
            "point it at your video folder, or set kinetics_mirror.path_lists to fetch them"
            if key == "videos"
            else f"point it at your {key} file"
        )
        raise MoveError(
            f"config key 'datasets.{dataset}.{key}' is not set: {hint} (edit config.yaml or "
            "pass --config)"
        )
    return str(value)


def mirror_videos(dataset: str) -> str:
    """The folder rule fetch_kinetics fills with a dataset's videos from the Kinetics mirror."""
    return layout.MIRROR_VIDEOS.format(dataset=dataset)


def check_config_command(args) -> str:
    """``move check-config``: validate a config file against the schema."""
    load_config(args.config)
    return f"{args.config}: valid"


def section_keys(section: str) -> tuple[str, ...]:
    """The keys of the schema's ``$defs.<section>`` (``extract``, ``train``) in the schema's order."""
    return tuple(_shipped_schema()["$defs"][section]["properties"])


def with_defaults(instance, schema: dict, root: dict):
    """``instance`` (a config or a part of it) with every ``default`` its schema declares filled
    in where the key is absent, recursively (objects, ``additionalProperties`` maps, ``$ref``)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    if not isinstance(instance, dict):
        return instance
    filled = dict(instance)
    for key, rule in schema.get("properties", {}).items():
        if key not in filled and "default" in rule:
            filled[key] = rule["default"]
        if key in filled:
            filled[key] = with_defaults(filled[key], rule, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(filled) - set(schema.get("properties", {})):
            filled[key] = with_defaults(filled[key], extra, root)
    return filled
