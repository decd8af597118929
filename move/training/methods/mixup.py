"""Mixup of what the classifier reads: the frames without aggregators, the aggregated 3072-d
features with them (as the authors' Agg script)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import BASELINE, partners
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    from move.training.context import Batch, RunContext


@dataclass(frozen=True)
class MixupSettings:
    """Mixup's Beta(alpha, alpha) (the authors' value)."""

    alpha: float = setting(1.0, "lambda ~ Beta(alpha, alpha), one per batch", exclusiveMinimum=0)


def mixup_transform(model, batch: Batch, context: RunContext):
    """Mixup with lambda ~ Beta(alpha, alpha) per batch, partners from the run's generator."""
    from move.training.losses import mixup
    from move.training.vicinity import sample_interpolation_weight

    lam = sample_interpolation_weight(context.options.alpha, context.generator)
    permutation = partners(len(batch.x), context, batch.x.device)
    mixed, targets = mixup(model.represent(batch.x), batch.targets, lam, permutation)
    return model.head(mixed), targets


register_method(
    Method(
        "mixup",
        "Mixup",
        **(BASELINE | {"transform": mixup_transform}),
        settings=MixupSettings,
        summary="mixup",
    )
)
