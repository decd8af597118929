"""An example baseline with two hyperparameters, in one file: what adding a method takes.

Focal loss with a class-balanced weight: ``gamma`` (focal exponent) and ``beta`` (effective-number
beta). Saved as ``move/training/methods/<name>.py`` it would be built in; here the tests register
it (``import tests.example_method``), and ``tests/test_registry.py`` installs it as an
out-of-tree plugin through the ``move.methods`` entry point.
"""

from __future__ import annotations

from dataclasses import dataclass

from move.training.methods.common import BASELINE
from move.training.registry import Method, setting


@dataclass(frozen=True)
class FocalCbSettings:
    """The focal exponent and the class-balanced weight's beta."""

    gamma: float = setting(2.0, "focal loss exponent", minimum=0)
    beta: float = setting(0.999, "effective-number beta", minimum=0, exclusiveMaximum=1)


def focal_cb_loss(logits, targets, batch, context):
    """Focal loss with exponent ``gamma``, weighted per class by the effective number (``beta``)."""
    import torch
    import torch.nn.functional as F

    from move.training.losses import class_balanced_weights

    weight = class_balanced_weights(context.counts, context.options.beta).to(logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return ((1 - torch.exp(-bce)) ** context.options.gamma * bce * weight).mean()


FOCAL_CB = Method(
    "focal_cb",
    "Focal + CB (example)",
    **(BASELINE | {"loss": focal_cb_loss}),
    settings=FocalCbSettings,
    summary="focal loss, class-balanced weights",
)
