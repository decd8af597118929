"""CBS: class-balanced sampling with the authors' masked, summed BCE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from move.training.methods.common import BASELINE
from move.training.registry import Method, register_method

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext


def class_balanced_order(
    labels: list[list[int]], n_classes: int, rng: np.random.Generator, epoch: int, options: Any
):
    """As many class-balanced draws as videos; each video's anchor is the class it was drawn for."""
    from move.training.losses import class_balanced_draws

    return class_balanced_draws(labels, len(labels), rng)


def cbs_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """CBS's masked BCE: other positive labels out, summed over classes (``anchor_masked_bce``)."""
    from move.training.losses import anchor_masked_bce

    return anchor_masked_bce(logits, targets, batch.anchor)


register_method(
    Method(
        "cbs",
        "CBS",
        **(BASELINE | {"loss": cbs_loss, "sampler": class_balanced_order}),
        summary="class-balanced sampling, masked summed BCE",
    )
)
