"""The method registry's storage: what a method is (``Method``), how it is registered, and how its
settings dataclass becomes a config schema.

A method says what makes it differ from plain training, the way timm registers models: its name
and display name, its own frozen settings dataclass, its loss, its sampler (the epoch's order of
training videos), its batch transform (how a batch becomes logits and targets: mixup,
FrameStack, MOVE's vicinity), its end-of-epoch hook, whether it needs the aggregators, the
authors' gradient clipping, and optionally how it builds the model, which parameters it trains
with which optimiser, and in which stage an epoch is (two-stage / decoupled baselines).

This module never imports a method: the built-in ones register themselves in
``move.training.methods`` (the package imports its families), methods of other packages through
the entry-point group ``move.methods``. Read the registry through ``move.training.methods``,
which loads both first. No torch here: planning lists the methods.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from move.errors import MoveError

# (model, batch, context) -> (logits, targets): the batch transform and forward pass
Transform = Callable[[Any, Any, Any], tuple[Any, Any]]
# (logits, targets, batch, context) -> scalar loss
Loss = Callable[[Any, Any, Any, Any], Any]
# (labels per video, number of classes, numpy Generator, epoch, method settings)
#   -> (video order, anchor class per drawn video or None)
Sampler = Callable[[list[list[int]], int, Any, int, Any], tuple[Any, Any]]
# (context) -> None, after the epoch's last batch (e.g. FrameStack's per-class AP)
EpochHook = Callable[[Any], None]
# (number of classes, TrainSettings, method settings) -> the network (default VideoClassifier)
ModelBuilder = Callable[[int, Any, Any], Any]
# (model, context) -> optimiser, called at the start of the run and of every new stage
OptimizerBuilder = Callable[[Any, Any], Any]
# (epoch, method settings) -> stage index; the loop re-configures the optimiser on a change
StageOf = Callable[[int, Any], int]

JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum")


@dataclass(frozen=True)
class NoSettings:
    """The settings of a method without hyperparameters."""


def setting(default: Any, description: str, **bounds: Any) -> Any:
    """A method setting: its default, the schema's description and bounds (``minimum``,
    ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``enum``)."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise ValueError(f"unknown bound(s) {', '.join(sorted(unknown))}: use {', '.join(BOUNDS)}")
    return dataclasses.field(default=default, metadata={"description": description, **bounds})


def settings_schema(settings: type, summary: str = "") -> dict:
    """The JSON schema of a method's settings section, generated from its dataclass: one property
    per field with its type, default, description and bounds."""
    hints = typing.get_type_hints(settings)
    properties = {}
    for field in dataclasses.fields(settings):
        rule = {"default": field.default, **field.metadata}
        kind = JSON_TYPES.get(hints[field.name])
        if kind is None:
            raise ValueError(
                f"setting {settings.__name__}.{field.name}: use bool, int, float or str"
            )
        if "enum" not in rule:
            rule["type"] = kind
        properties[field.name] = rule
    return {
        "type": "object",
        "additionalProperties": False,
        "description": summary,
        "properties": properties,
    }


@dataclass(frozen=True)
class Method:
    """One training objective and its hooks. ``grad_clip`` is the classifier's gradient-norm bound
    of the authors' script (None: off); ``settings`` the method's frozen settings dataclass."""

    name: str
    display: str
    loss: Loss
    transform: Transform
    sampler: Sampler
    end_of_epoch: EpochHook | None = None
    needs_aggregators: bool = False
    grad_clip: float | None = 20.0
    summary: str = ""
    settings: type = NoSettings
    build_model: ModelBuilder | None = None
    configure_optimizer: OptimizerBuilder | None = None
    stage: StageOf | None = None

    def variants(self) -> tuple[str, ...]:
        """Table rows of this method: ``<name>`` (frame-wise) and ``<name>_agg``, or only ``<name>``."""
        if self.needs_aggregators:
            return (self.name,)
        return (self.name, f"{self.name}_agg")

    def variant(self, aggregators: bool) -> str:
        """The table variant of a run: ``cb_loss`` + aggregators -> ``cb_loss_agg``."""
        return self.name if self.needs_aggregators or not aggregators else f"{self.name}_agg"

    def options(self, values: dict | None = None) -> Any:
        """This method's settings from a config section (defaults for what it leaves out);
        an unknown key or a value outside an ``enum`` -> ``MoveError`` naming it."""
        values = dict(values or {})
        fields = {f.name: f for f in dataclasses.fields(self.settings)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            allowed = ", ".join(fields) or "none"
            raise MoveError(
                f"train setting '{self.name}': unknown key(s) {', '.join(unknown)} "
                f"(allowed: {allowed})"
            )
        for key, value in values.items():
            allowed = fields[key].metadata.get("enum")
            if allowed is not None and value not in allowed:
                raise MoveError(
                    f"train setting '{self.name}.{key}': {value!r} is not allowed "
                    f"(choose one of {', '.join(map(str, allowed))})"
                )
        return self.settings(**values)

    def stage_of(self, epoch: int, options: Any) -> int:
        """The training stage of ``epoch`` (0 for single-stage methods)."""
        return 0 if self.stage is None else self.stage(epoch, options)


_REGISTRY: dict[str, Method] = {}
_MODULES: dict[str, str] = {}  # method name -> the module that registered it


def register_method(method: Method, module: str | None = None) -> Method:
    """Add a method to the registry (its name must be new, lower case, digits and underscores).
    ``module``: where it is declared (default: the calling module), whose docstring the methods
    reference page shows."""
    if not method.name.replace("_", "").isalnum() or method.name != method.name.lower():
        raise ValueError(f"method name {method.name!r}: use lower-case letters, digits and _")
    if method.name.endswith("_agg"):
        raise ValueError(f"method name {method.name!r} must not end in _agg (the Agg variant)")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    if not dataclasses.is_dataclass(method.settings):
        raise ValueError(f"method {method.name!r}: settings must be a dataclass")
    settings_schema(method.settings)  # refuses field types the schema cannot state
    _REGISTRY[method.name] = method
    _MODULES[method.name] = module or sys._getframe(1).f_globals.get("__name__", "")
    return method


def declaring_module(name: str) -> str:
    """The module a registered method was declared in (e.g. 'move.training.methods.cbs')."""
    return _MODULES.get(name, "")


def unregister_method(name: str) -> None:
    """Remove a method (tests that register an example method clean up with this)."""
    _REGISTRY.pop(name, None)
    _MODULES.pop(name, None)


def registered() -> dict[str, Method]:
    """The registry as it stands (``move.training.methods`` loads the methods into it)."""
    return _REGISTRY
