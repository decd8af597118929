"""The method registry: MOVE and every baseline is one registered ``Method``, declared in one place.

A method says what makes it differ from plain training, the way timm registers models: its name
and display name, its loss, its sampler (the epoch's order of training videos), its batch
transform (how a batch becomes logits and targets: mixup, FrameStack, MOVE's vicinity), its
end-of-epoch hook, whether it needs the aggregators, and the authors' gradient clipping. The loop
calls these hooks and nothing else; settings, the config schema's enums, the tables and the CLI
help all read the lists below. Adding a method is one ``register_method`` call (see
``move.training.methods`` for the built-in ones and ``tests/test_registry.py`` for an example).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from move.errors import MoveError

# (model, batch, context) -> (logits, targets): the batch transform and forward pass
Transform = Callable[[Any, Any, Any], tuple[Any, Any]]
# (logits, targets, batch, context) -> scalar loss
Loss = Callable[[Any, Any, Any, Any], Any]
# (labels per video, number of classes, numpy Generator) -> (video order, anchor class or None)
Sampler = Callable[[list[list[int]], int, Any], tuple[Any, Any]]
# (context) -> None, after the epoch's last batch (e.g. FrameStack's per-class AP)
EpochHook = Callable[[Any], None]


@dataclass(frozen=True)
class Method:
    """One training objective. ``grad_clip`` is the classifier's gradient-norm bound (None: off)."""

    name: str
    display: str
    loss: Loss
    transform: Transform
    sampler: Sampler
    end_of_epoch: EpochHook | None = None
    needs_aggregators: bool = False
    grad_clip: float | None = 20.0
    summary: str = ""

    def variants(self) -> tuple[str, ...]:
        """Table rows of this method: ``<name>`` (frame-wise) and ``<name>_agg``, or only ``<name>``."""
        if self.needs_aggregators:
            return (self.name,)
        return (self.name, f"{self.name}_agg")


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add a method to the registry (its name must be new, lower case, digits and underscores)."""
    if not method.name.replace("_", "").isalnum() or method.name != method.name.lower():
        raise ValueError(f"method name {method.name!r}: use lower-case letters, digits and _")
    if method.name.endswith("_agg"):
        raise ValueError(f"method name {method.name!r} must not end in _agg (the Agg variant)")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method (tests that register an example method clean up with this)."""
    _REGISTRY.pop(name, None)


def _registry() -> dict[str, Method]:
    """The registry with the built-in methods loaded (their module registers them on import)."""
    import move.training.methods  # noqa: F401  (registers the built-in methods)

    return _REGISTRY


def method_names() -> tuple[str, ...]:
    """Every registered method, in registration order (the built-in ones first)."""
    return tuple(_registry())


def get_method(name: str) -> Method:
    """The registered method ``name``; unknown -> ``MoveError`` listing the choices."""
    methods = _registry()
    if name not in methods:
        raise MoveError(f"unknown method '{name}': choose one of {', '.join(methods)}")
    return methods[name]


def variant_names() -> tuple[str, ...]:
    """Every table variant: ``<method>`` / ``<method>_agg`` of each method (MOVE: ``move`` only)."""
    return tuple(v for method in _registry().values() for v in method.variants())


def variant_settings(variant: str) -> dict:
    """``'cb_loss_agg'`` -> ``{'method': 'cb_loss', 'aggregators': True}``; unknown -> MoveError."""
    for method in _registry().values():
        if variant in method.variants():
            aggregators = method.needs_aggregators or variant.endswith("_agg")
            return {"method": method.name, "aggregators": aggregators}
    raise MoveError(f"unknown method variant '{variant}': choose from {', '.join(variant_names())}")


def variant_of(method: str, aggregators: bool) -> str:
    """The table variant a run belongs to: ``cb_loss`` + aggregators -> ``cb_loss_agg``."""
    if get_method(method).needs_aggregators or not aggregators:
        return method
    return f"{method}_agg"
