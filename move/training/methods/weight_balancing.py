"""Weight balancing (Alshammari et al., "Long-tailed recognition via weight balancing", CVPR 2022),
as their code (ShadeAlsha/LTR-weight-balancing, demo1 / demo2 and ``utils/regularizers.py``):

- stage one: the whole network with weight decay (Sec. 3.2, the L2 penalty lambda ||Theta||^2
  of their Eq. 2 through SGD's ``weight_decay``; their demo: SGD, lr 0.01, momentum 0.9,
  weight decay 5e-3);
- stage two, from ``retrain_epoch``: the last layer alone (W, b), with a stronger weight decay
  (0.1), a class-balanced loss (Cui et al.'s effective number, beta 0.9999) and the MaxNorm
  constraint ||w_c||_2 <= delta (their Eq. 3), enforced by projected gradient descent
  (``MaxNorm_via_PGD``): delta = min_c ||w_c|| + thresh * (max_c ||w_c|| - min_c ||w_c||) of the
  norms at the start of stage two (thresh 0.1), rows above delta scaled down to it, the bias
  unconstrained, once after each training epoch, as their ``train_model`` calls ``PGD``.

Their stage-two class-balanced loss is ``CB_loss(..., "softmax", beta=0.9999)``: binary
cross-entropy on the softmax probabilities and the one-hot target, every term of a sample weighted
by its class's normalised weight (``cb_form: softmax``, the default; a multi-hot target takes the
sum of its classes' weights, what their code computes on a multi-hot, and the evaluated scores
are the softmax probabilities). ``cb_form: sigmoid`` uses this code base's class-balanced BCE (the
CB Loss row) instead. Differences from their demo: the learning-rate schedule is this code
base's step schedule (``train.lr_milestones``, restarted at stage two) rather than cosine, and
the loss of stage one is the baselines' BCE rather than softmax cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from move.training.methods.common import BASELINE
from move.training.methods.decoupling import (
    check_reaches_stage_two,
    freeze_all_but,
    last_layer,
    two_stages,
)
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext
    from move.training.settings import TrainSettings


@dataclass(frozen=True)
class WeightBalancingSettings:
    """The two stages' optimisers, the class-balanced loss and the MaxNorm threshold (their demo's
    values)."""

    retrain_epoch: int = setting(
        90, "first epoch of stage two (the last layer with MaxNorm); below train.epochs", minimum=1
    )
    optimizer: str = setting(
        "sgd",
        "sgd: SGD with momentum 0.9 at lr (the authors'); adam: Adam at train.lr, weight decay "
        "as its L2 term",
        enum=["sgd", "adam"],
    )
    lr: float = setting(
        0.01, "SGD learning rate of both stages (0.01 in their demos)", exclusiveMinimum=0
    )
    weight_decay: float = setting(5e-3, "stage one's weight decay (their demo: 5e-3)", minimum=0)
    classifier_weight_decay: float = setting(
        0.1, "stage two's weight decay on the last layer (their demo: 0.1)", minimum=0
    )
    max_norm_threshold: float = setting(
        0.1,
        "MaxNorm's thresh: delta = min + thresh * (max - min) of the class norms at stage two's "
        "start (their demo: 0.1)",
        minimum=0,
        maximum=1,
    )
    beta: float = setting(
        0.9999, "class-balanced loss's effective-number beta", minimum=0, exclusiveMaximum=1
    )
    cb_form: str = setting(
        "softmax",
        "softmax: their CB_loss('softmax'), BCE on softmax probabilities weighted per sample; "
        "sigmoid: this code base's class-balanced BCE",
        enum=["softmax", "sigmoid"],
    )


def max_norm_threshold(weight: torch.Tensor, thresh: float) -> torch.Tensor:
    """delta = min_c ||w_c|| + thresh * (max_c ||w_c|| - min_c ||w_c||) (their setPerLayerThresh)."""
    norms = weight.detach().norm(dim=1)
    return norms.min() + thresh * (norms.max() - norms.min())


def project_max_norm(weight: torch.Tensor, delta: torch.Tensor) -> None:
    """Eq. 3's projection, in place: rows with ||w_c|| > delta scaled to norm delta (their PGD)."""
    import torch

    with torch.no_grad():
        norms = weight.norm(dim=1, keepdim=True)
        weight.mul_(torch.where(norms > delta, delta / norms, torch.ones_like(norms)))


def class_balanced_softmax_loss(
    logits: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor
) -> torch.Tensor:
    """Their CB_loss 'softmax': BCE(softmax(logits), targets) with each sample's terms weighted by
    sum_c targets_c * class_weights_c, mean over samples and classes."""
    import torch.nn.functional as F

    sample_weight = (targets * class_weights.to(targets)).sum(dim=1, keepdim=True)
    weight = sample_weight.expand_as(targets)
    return F.binary_cross_entropy(logits.softmax(dim=1), targets, weight=weight)


def weight_balancing_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Stage one: the baselines' BCE. Stage two: the class-balanced loss (``cb_form``)."""
    from move.training.losses import bce_loss, class_balanced_weights

    s = context.options
    if not two_stages(context.epoch, s):
        return bce_loss(logits, targets)
    weights = class_balanced_weights(context.counts, s.beta).to(logits.device)
    if s.cb_form == "softmax":
        return class_balanced_softmax_loss(logits, targets, weights)
    return bce_loss(logits, targets, weights)


def make_optimizer(parameters, options: Any, weight_decay: float, lr: float):
    """SGD with momentum 0.9 (theirs) or Adam, with ``weight_decay``."""
    import torch

    if options.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=options.lr, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


def weight_balancing_optimizer(model, context: RunContext) -> torch.optim.Optimizer:
    """Stage one: every parameter, ``weight_decay``. Stage two: the last layer only,
    ``classifier_weight_decay``; MaxNorm's delta fixed from the norms at this point (kept in the
    method state, so a resumed run keeps the first one)."""
    check_reaches_stage_two(context)
    s, lr = context.options, context.settings.lr
    if two_stages(context.epoch, s):
        layer = last_layer(model)
        freeze_all_but(model, list(layer.parameters()))
        delta = max_norm_threshold(layer.weight, s.max_norm_threshold)
        context.state["max_norm_delta"] = float(delta)
        return make_optimizer(list(layer.parameters()), s, s.classifier_weight_decay, lr)
    return make_optimizer(model.parameters(), s, s.weight_decay, lr)


def weight_balancing_end_of_epoch(context: RunContext) -> None:
    """After each stage-two epoch: the MaxNorm projection of the last layer's rows."""
    delta = context.state.get("max_norm_delta")
    if delta is not None and two_stages(context.epoch, context.options):
        project_max_norm(last_layer(context.model).weight, delta)


def build_weight_balanced(n_classes: int, settings: TrainSettings, options: Any):
    """``VideoClassifier``; evaluated on softmax log-probabilities when stage two's loss is the
    softmax form (its logits are defined up to a per-video constant)."""

    from move.training.model import VideoClassifier

    class WeightBalancedClassifier(VideoClassifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = super().forward(x)
            if self.training or options.cb_form != "softmax":
                return logits
            return logits.log_softmax(dim=1)

    return WeightBalancedClassifier(n_classes, settings.model)


register_method(
    Method(
        "weight_balancing",
        "Weight balancing",
        **(BASELINE | {"loss": weight_balancing_loss}),
        settings=WeightBalancingSettings,
        build_model=build_weight_balanced,
        configure_optimizer=weight_balancing_optimizer,
        end_of_epoch=weight_balancing_end_of_epoch,
        stage=two_stages,
        summary="weight decay, then MaxNorm + class-balanced loss (Alshammari et al. 2022)",
    )
)
