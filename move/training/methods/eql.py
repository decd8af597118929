"""EQL: the equalization loss, which ignores a share of the tail classes' negative gradients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import BASELINE
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext


@dataclass(frozen=True)
class EqlSettings:
    """EQL's ignored share and its tail set (the authors' values)."""

    gamma: float = setting(0.00176, "share of tail negatives ignored", minimum=0, maximum=1)
    tail_max: int = setting(
        100,
        "tail classes: at most this many training videos (100 in the authors' code, whatever "
        "the evaluation groups)",
        minimum=0,
    )


def eql_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Equalization loss over the classes with at most ``tail_max`` training videos."""
    import torch

    from move.training.losses import eql_loss as equalization_loss

    s = context.options
    tail = torch.from_numpy(context.counts <= s.tail_max).float()
    return equalization_loss(logits, targets, tail, s.gamma, context.generator)


register_method(
    Method(
        "eql",
        "EQL",
        **(BASELINE | {"loss": eql_loss}),
        settings=EqlSettings,
        summary="equalization loss",
    )
)
