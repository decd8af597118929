"""Pieces several methods share: the shuffled order, the plain forward pass, BCE, mixing partners.

Torch is imported inside the hooks, so that declaring a method (planning, config validation,
``move --help``) needs no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext


def shuffled(
    labels: list[list[int]], n_classes: int, rng: np.random.Generator, epoch: int, options: Any
):
    """Every training video once, in a random order (the code's ``shuffle=True``); no anchors."""
    return rng.permutation(len(labels)), None


def plain_transform(model, batch: Batch, context: RunContext):
    """No transform: the model's logits on the batch, its own targets."""
    return model(batch.x), batch.targets


def bce(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """BCE on logits, mean over samples and classes (the code's ``BCELoss``)."""
    from move.training.losses import bce_loss

    return bce_loss(logits, targets)


def partners(n: int, context: RunContext, device: torch.device) -> torch.Tensor:
    """A random permutation of ``n`` from the run's generator (partners for mixing)."""
    import torch

    return torch.randperm(n, generator=context.generator).to(device)


# The baselines' common hooks and clipping (the authors' ``--gd 20``); a method overrides some.
BASELINE = dict(loss=bce, transform=plain_transform, sampler=shuffled, grad_clip=20.0)
