"""The backbone registry's storage: what a backbone is (``Backbone``), a family of them named by a
prefix (``BackboneFamily``, e.g. ``timm:<model>``), and how both are registered.

A backbone entry carries what timm's ``default_cfg`` carries, so extraction needs nothing else:
the feature size, the input size (centre crop) and the shorter side it is resized to first, the
normalisation mean and std, how many frames one forward pass takes together (1: per frame; TSM:
its 8 segments; a 3D model: one clip) and whether it gives one feature per frame or per clip,
and its named weights (URL, published sha256 or its prefix, and what they were trained on: the
Kinetics leak guard reads that field).

This module never imports a backbone: the built-in families register themselves in
``move.extraction.backbones`` (the package imports its family files, as timm's ``models``), the
backbones of other packages through the entry-point group ``move.backbones``. Read the registry
through ``move.extraction.backbones``, which loads both first. No torch here: planning reads it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINETICS_400 = "kinetics-400"
IMAGENET_1K = "imagenet-1k"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class NamedWeights:
    """Weights a backbone loads by name: where they are published, their sha256 (the whole or
    the prefix torch.hub puts in file names; empty: recorded at the first download), the data
    they were trained on (``imagenet-1k``, ``kinetics-400``, ...) and the file name they are
    cached as (empty: the URL's)."""

    url: str
    trained_on: str
    sha256: str = ""
    file_name: str = ""


@dataclass(frozen=True)
class Backbone:
    """One feature extractor: how to build it and how to feed it.

    ``build()`` returns an ``nn.Module`` whose ``forward_features`` maps normalised frames
    ``[N, 3, input_size, input_size]`` to ``[N, feature_dim]`` (a clip model repeats each clip's
    feature for its frames; extraction keeps one row per clip). ``frames_per_pass``: frames the
    network sees together (1 per frame, TSM's segments, a 3D model's clip); ``per_clip``: one
    feature per clip of ``frames_per_pass`` frames instead of one per frame. ``feature_dim`` None
    means known once built (timm's ``num_features``). ``load_weights(model, path)`` loads a
    checkpoint file (None: a strict state-dict load, heads dropped).
    """

    name: str
    build: Callable[[], Any]
    feature_dim: int | None
    input_size: int
    resize: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    frames_per_pass: int = 1
    per_clip: bool = False
    weights: Mapping[str, NamedWeights] = field(default_factory=dict)
    summary: str = ""
    load_weights: Callable[[Any, Any], None] | None = None

    def default_weights(self) -> str:
        """The named weights a real dataset uses (the first), else ``none``."""
        return next(iter(self.weights), "none")

    def trained_on(self, weights: str) -> str | None:
        """What ``weights`` (a name, or a named weight's URL) were trained on; None if unknown."""
        for name, named in self.weights.items():
            if weights in (name, named.url):
                return named.trained_on
        return None


@dataclass(frozen=True)
class BackboneFamily:
    """Backbones named ``<prefix>:<model>`` for any model the family knows (``timm:<name>``):
    ``describe(model)`` gives its entry, or raises ``MoveError`` for an unknown model.
    ``pattern`` is the regular expression of the model part, for the config schema."""

    prefix: str
    describe: Callable[[str], Backbone]
    summary: str
    example: str
    pattern: str = r"[A-Za-z0-9_.\-]+"


_BACKBONES: dict[str, Backbone] = {}
_FAMILIES: dict[str, BackboneFamily] = {}
_MODULES: dict[str, str] = {}  # backbone or family prefix -> the module that registered it


def register_backbone(backbone: Backbone, module: str | None = None) -> Backbone:
    """Add a backbone (its name must be new: lower-case letters, digits and underscores)."""
    if not NAME.match(backbone.name):
        raise ValueError(f"backbone name {backbone.name!r}: use lower-case letters, digits and _")
    if backbone.name in _BACKBONES:
        raise ValueError(f"backbone {backbone.name!r} is already registered")
    if backbone.per_clip and backbone.frames_per_pass < 1:
        raise ValueError(f"backbone {backbone.name!r}: a clip model needs frames_per_pass >= 1")
    _BACKBONES[backbone.name] = backbone
    _MODULES[backbone.name] = module or sys._getframe(1).f_globals.get("__name__", "")
    return backbone


def register_family(family: BackboneFamily, module: str | None = None) -> BackboneFamily:
    """Add a family of backbones named ``<prefix>:<model>``."""
    if not PREFIX.match(family.prefix) or family.prefix in _FAMILIES:
        raise ValueError(f"backbone family {family.prefix!r}: a new lower-case prefix is needed")
    _FAMILIES[family.prefix] = family
    _MODULES[f"{family.prefix}:"] = module or sys._getframe(1).f_globals.get("__name__", "")
    return family


def unregister_backbone(name: str) -> None:
    """Remove a backbone or a family (``'<prefix>:'``); tests that register one clean up."""
    _BACKBONES.pop(name, None)
    _FAMILIES.pop(name.removesuffix(":"), None)
    _MODULES.pop(name, None)


def declaring_module(name: str) -> str:
    """The module a backbone (or a family, ``'<prefix>:'``) was registered by."""
    return _MODULES.get(name, "")


def registered() -> dict[str, Backbone]:
    """The named backbones as they stand (``move.extraction.backbones`` loads them)."""
    return _BACKBONES


def registered_families() -> dict[str, BackboneFamily]:
    """The backbone families as they stand, by prefix."""
    return _FAMILIES
