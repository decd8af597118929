"""Stage 2, backbones: the registry's families, one file each, and its queries.

Importing this package registers the built-in backbones (it imports their family files, as
timm's ``models/__init__`` imports its families): the ImageNet ResNets the paper uses
(``resnets``), TSM (``tsm``), torchvision's Kinetics-trained video models (``torchvision_video``)
and any timm image model as ``timm:<name>`` (``timm_image``). Then the backbones other installed
packages declare in the entry-point group ``move.backbones`` (an entry point names a module that
registers its backbones on import, or a ``Backbone``). Every list of backbones (config schema,
CLI help, planning checks, docs) reads the queries below. Adding a backbone is one entry in a
family file, or one new file: see docs/development/adding-a-backbone.md.

No torch at import (planning reads the registry); ``create_backbone``, the checkpoint loading
and the networks are loaded from ``loading``, ``checkpoints`` and ``networks`` when first
asked for.
"""

from __future__ import annotations

from typing import Any

from move.config import register_schema_part
from move.errors import MoveError
from move.extraction.backbones import (  # noqa: F401  (each registers its backbones)
    resnets,
    timm_image,
    torchvision_video,
    tsm,
)
from move.extraction.registry import (
    KINETICS_400,
    Backbone,
    BackboneFamily,
    register_backbone,
    register_family,
    registered,
    registered_families,
)
from move.plugins import loaded_entry_points

ENTRY_POINT_GROUP = "move.backbones"
# The paper's backbones first (Tables 1-3), then the others as they registered.
PAPER_ORDER = ("resnet50", "resnet101", "tsm_resnet50")


def load_entry_points() -> None:
    """Register the backbones of other packages (group ``move.backbones``); a broken one stops
    with one line naming it."""
    for entry, loaded in loaded_entry_points(ENTRY_POINT_GROUP, "backbone"):
        if isinstance(loaded, Backbone) and loaded.name not in registered():
            register_backbone(loaded, module=entry.module)
        elif isinstance(loaded, BackboneFamily) and loaded.prefix not in registered_families():
            register_family(loaded, module=entry.module)


load_entry_points()


def backbone_names() -> tuple[str, ...]:
    """Every named backbone: the paper's first, then the others in registration order."""
    rank = {name: i for i, name in enumerate(PAPER_ORDER)}
    return tuple(sorted(registered(), key=lambda name: rank.get(name, len(rank))))


def family_prefixes() -> tuple[str, ...]:
    """The prefixes of the backbone families (``timm`` for ``timm:<name>``)."""
    return tuple(registered_families())


def get_backbone(name: str) -> Backbone:
    """The entry of backbone ``name`` (a registered name or ``<prefix>:<model>``); unknown ->
    ``MoveError`` listing the choices."""
    if name in registered():
        return registered()[name]
    prefix, sep, model = name.partition(":")
    if sep and prefix in registered_families():
        return registered_families()[prefix].describe(model)
    families = ", ".join(f"{f.prefix}:<model> (e.g. {f.example})" for f in _families())
    raise MoveError(
        f"unknown backbone '{name}': choose one of {', '.join(backbone_names())}"
        + (f", or {families}" if families else "")
    )


def _families() -> list[BackboneFamily]:
    return list(registered_families().values())


def backbone_pattern() -> str:
    """Regular expression of every backbone name: a named one or ``<prefix>:<model>``."""
    names = "|".join(backbone_names())
    families = "|".join(f"{f.prefix}:{f.pattern}" for f in _families())
    return f"^(?:{names}{'|' + families if families else ''})$"


def backbone_schema() -> dict:
    """The JSON schema of a backbone name: the named ones' enum or a family's pattern."""
    named: dict[str, Any] = {"enum": list(backbone_names())}
    families = [
        {"type": "string", "pattern": f"^{f.prefix}:{f.pattern}$", "title": f"{f.prefix}:<model>"}
        for f in _families()
    ]
    return {"anyOf": [named, *families]} if families else named


def fill_schema(schema: dict) -> dict:
    """The config schema's backbone parts from this registry, in place (returns ``schema``):
    every backbone key and list takes a named backbone or ``<prefix>:<model>`` of a family;
    ``extract.weights`` and a dataset's ``features`` take a key per named backbone (weights
    defaulting to its named weights) and per family pattern. The shipped schema holds them for
    the built-in backbones (``move docs`` writes them); planning fills them again for backbones
    registered since (entry points, tests)."""
    name = backbone_schema()
    families = [rule["pattern"] for rule in name.get("anyOf", [])[1:]]
    dataset = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    schema["$defs"]["backbones"]["items"] = name
    for rule in (
        schema["properties"]["backbone"],
        dataset["backbone"],
        dataset["ablation_backbone"],
    ):
        for key in ("enum", "anyOf"):
            rule.pop(key, None)
        rule.update(name)
    weights = schema["$defs"]["extract"]["properties"]["weights"]
    weights["properties"] = {
        b: {"type": "string", "default": get_backbone(b).default_weights()}
        for b in backbone_names()
    }
    weights["patternProperties"] = {pattern: {"type": "string"} for pattern in families}
    features = dataset["features"]
    features["properties"] = {b: {"$ref": "#/$defs/path_or_null"} for b in backbone_names()}
    features["patternProperties"] = {p: {"$ref": "#/$defs/path_or_null"} for p in families}
    return schema


def kinetics_trained(backbone: str, weights: str) -> bool:
    """Whether ``weights`` of ``backbone`` (a name, or a named weight's URL) were trained on
    Kinetics-400: what the registry entry's named weights say they were trained on
    (``NamedWeights.trained_on``), whatever the backbone or weights are called."""
    try:
        entry = get_backbone(backbone)
    except MoveError:
        return False
    return entry.trained_on(weights) == KINETICS_400


register_schema_part("backbones", fill_schema, lambda: (backbone_names(), family_prefixes()))


def backbones_help() -> str:
    """One line for ``--help``: the named backbones and the families."""
    families = [f"{f.prefix}:<model> (e.g. {f.example})" for f in _families()]
    return ", ".join([*backbone_names(), *families])


_LAZY = {
    "create_backbone": "loading",
    "checkpoint_check": "loading",
    "verified_weights": "loading",
    "read_state_dict": "checkpoints",
    "canonical_key": "checkpoints",
    "remap_keys": "checkpoints",
    "load_backbone_weights": "checkpoints",
    "load_fitting_state": "checkpoints",
    "TimmBackbone": "networks",
    "TSMBackbone": "networks",
    "TemporalShift": "networks",
    "ClipBackbone": "networks",
    "temporal_shift": "networks",
}


def available_backbones() -> list[str]:
    """The named backbones ``create_backbone`` accepts (families accept ``<prefix>:<model>``)."""
    return sorted(backbone_names())


def __getattr__(name: str) -> Any:
    """The torch parts (``create_backbone``, the networks), imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name == "BACKBONES":  # name -> builder of every named backbone (older callers)
        return {name: registered()[name].build for name in backbone_names()}
    if name in ("IMAGENET_MEAN", "IMAGENET_STD"):
        from move.extraction.backbones import resnets

        return getattr(resnets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
