"""CB Loss: BCE weighted by the effective number of samples of each class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import BASELINE
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext


@dataclass(frozen=True)
class CbLossSettings:
    """The effective number's beta (the authors' value)."""

    beta: float = setting(0.9999, "effective-number beta", minimum=0, exclusiveMaximum=1)


def cb_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Class-balanced BCE (effective number of samples, beta = ``beta``)."""
    from move.training.losses import bce_loss, class_balanced_weights

    weight = class_balanced_weights(context.counts, context.options.beta).to(logits.device)
    return bce_loss(logits, targets, weight)


register_method(
    Method(
        "cb_loss",
        "CB Loss",
        **(BASELINE | {"loss": cb_loss}),
        settings=CbLossSettings,
        summary="class-balanced BCE",
    )
)
