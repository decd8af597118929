"""The workflow's one configuration: validation against the schema and per-dataset settings.

Reads ``config.yaml`` (or a dict Snakemake loaded) and ``workflow/schemas/config.schema.yaml``.
A wrong key or value raises ``MoveError`` with one line naming the key and what is allowed.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from move.errors import MoveError

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config JSON schema (YAML on disk), its method lists filled from the method registry.

    ``train.method`` and ``table.methods`` list what ``move.training.registry`` holds, so a
    method registered there is valid in the config without editing the schema.
    """
    from move.training.registry import method_names, variant_names

    schema = yaml.safe_load(Path(path).read_text())
    schema["$defs"]["train"]["properties"]["method"]["enum"] = list(method_names())
    schema["properties"]["table"]["properties"]["methods"]["items"]["enum"] = list(variant_names())
    return schema


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def describe_error(error: jsonschema.ValidationError) -> str:
    """One line naming the config key, the bad value and what is allowed."""
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"config key '{key}': unknown key(s) {', '.join(unknown)}{hint}"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not allowed (choose one of {', '.join(map(str, error.validator_value))})"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        prefix = "" if key == "(top level)" else f"{key}."
        return f"config key '{prefix}{missing[0]}' is missing (add it; see config.yaml)"
    if error.validator == "propertyNames":
        return f"config key '{key}': name {error.instance!r} must be letters and digits, starting with a letter"
    return f"config key '{key}': {error.message}"


def validate_config(config: dict, schema: dict | None = None, source: str = "config") -> None:
    """Raise ``MoveError`` naming the first invalid key (the one deepest in the tree)."""
    validator = jsonschema.Draft202012Validator(schema or load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise MoveError(f"{source}: {describe_error(error)}")


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
    """A dataset's input path; unset (null) stops with the config key to set."""
    value = dataset_config(config, dataset).get(key)
    if not value:
        raise MoveError(
            f"config key 'datasets.{dataset}.{key}' is not set: point it at your "
            f"{'video folder' if key == 'videos' else key + ' file'} (edit config.yaml or pass --config)"
        )
    return str(value)
