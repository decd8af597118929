"""Checks every stage shares, below everything else: no schema, no registry, no torch.

``describe_error`` turns a jsonschema error into the one-line message the config and the
settings give; ``check_batch_size`` is the aggregators' rule that no schema can state alone.
"""

from __future__ import annotations

import jsonschema

from move.errors import MoveError


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def describe_error(error: jsonschema.ValidationError, noun: str = "config key") -> str:
    """One line naming the config key (or setting: ``noun``), the bad value and what is allowed."""
    key = _key_path(error)
    parent = error.parent
    if parent is not None and parent.validator == "anyOf":  # an enum, or a named pattern
        choices = [str(c) for rule in parent.validator_value for c in rule.get("enum", [])]
        choices += [rule["title"] for rule in parent.validator_value if "title" in rule]
        if choices and not isinstance(parent.instance, (dict, list)):
            return (
                f"{noun} '{_key_path(parent)}': {parent.instance!r} is not allowed "
                f"(choose one of {', '.join(choices)})"
            )
    if error.validator in ("oneOf", "anyOf") and not isinstance(error.instance, (dict, list)):
        choices = [text for rule in error.validator_value for text in _alternatives(rule)]
        if choices:
            return f"{noun} '{key}': {error.instance!r} is not allowed (use {', '.join(choices)})"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{noun} '{key}': unknown key(s) {', '.join(unknown)}{hint}"
    if error.validator == "enum":
        return f"{noun} '{key}': {error.instance!r} is not allowed (choose one of {', '.join(map(str, error.validator_value))})"
    if error.validator == "not" and "description" in error.schema:  # a key refused here
        return f"{noun} '{key}': {error.schema['description']}"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        prefix = "" if key == "(top level)" else f"{key}."
        return f"{noun} '{prefix}{missing[0]}' is missing (add it; see config.yaml)"
    if error.validator == "propertyNames":
        return f"{noun} '{key}': name {error.instance!r} must be letters and digits, starting with a letter"
    if error.validator == "type" and isinstance(error.instance, str) and "." in key:
        return (
            f"{noun} '{key}': {error.message} (Snakemake's --config passes nested values as text: "
            f"write them to a YAML file and add it, e.g. echo '{nested_yaml(key, error.instance)}' "
            "> more.yaml; snakemake ... --configfile more.yaml; or edit config.yaml)"
        )
    return f"{noun} '{key}': {error.message}"


def _alternatives(rule: dict) -> list[str]:
    """What one alternative of a ``oneOf`` / ``anyOf`` allows, in words (its values, its title,
    or a number's bound)."""
    if "enum" in rule:
        return [str(value) for value in rule["enum"]]
    if "title" in rule:
        return [rule["title"]]
    bounds = [(">", "exclusiveMinimum"), (">=", "minimum")]
    if rule.get("type") in ("number", "integer"):
        kind = "a number" if rule["type"] == "number" else "an integer"
        words = [f"{sign} {rule[bound]}" for sign, bound in bounds if bound in rule]
        return [" ".join([kind, *words])]
    return []


def check_batch_size(batch_size: int, aggregators: bool, name: str) -> None:
    """The aggregators' BatchNorm needs two videos a batch: refuse batch_size 1 with them.

    ``name`` is how the message names the setting (e.g. ``config key 'train.batch_size'``).
    """
    if aggregators and batch_size < 2:
        raise MoveError(
            f"{name}: {batch_size} is less than the minimum of 2 with aggregators "
            "(their BatchNorm needs 2 videos a batch): raise it, or set aggregators to false"
        )


def nested_yaml(key: str, value: str) -> str:
    """``'train.epochs', '5'`` -> ``'train: {epochs: 5}'``: one YAML line setting a nested key."""
    first, *rest = key.split(".")
    inner = value
    for part in reversed(rest):
        inner = f"{{{part}: {inner}}}"
    return f"{first}: {inner}"
