"""LDAM-DRW: label-distribution-aware margins, re-weighted class-balanced from ``drw_epoch`` on
(the code's ``LDAM`` loss)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import BASELINE
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext


@dataclass(frozen=True)
class LdamDrwSettings:
    """LDAM's margins and scale, DRW's start and beta (the authors' values)."""

    max_margin: float = setting(0.5, "LDAM largest margin", exclusiveMinimum=0)
    scale: float = setting(30.0, "LDAM logit scale s", exclusiveMinimum=0)
    drw_epoch: int = setting(50, "epoch from which DRW re-weights", minimum=0)
    beta: float = setting(0.9999, "DRW's effective-number beta", minimum=0, exclusiveMaximum=1)


def ldam_drw_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """LDAM margins, re-weighted class-balanced from ``drw_epoch`` on."""
    from move.training import losses

    s = context.options
    margins = losses.ldam_margins(context.counts, s.max_margin).to(logits.device)
    weight = losses.drw_weights(context.counts, context.epoch, s.drw_epoch, s.beta)
    return losses.ldam_loss(logits, targets, margins, s.scale, weight.to(logits.device))


register_method(
    Method(
        "ldam_drw",
        "LDAM-DRW",
        **(BASELINE | {"loss": ldam_drw_loss}),
        settings=LdamDrwSettings,
        summary="LDAM + DRW",
    )
)
