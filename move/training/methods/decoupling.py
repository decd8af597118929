"""Decoupling representation and classifier (Kang et al., "Decoupling representation and
classifier for long-tailed recognition", ICLR 2020), as their code
(facebookresearch/classifier-balancing): stage one learns representation and classifier with
instance-balanced sampling; stage two, in the same training job from ``retrain_epoch`` on,
adjusts the classifier.

"The classifier" is the network's last linear layer W, b (their ``DotProduct_Classifier``'s
``fc``); "the representation" everything before it (aggregators, the hidden layer of
``VideoClassifier.classifier``). Three methods:

- ``crt`` (classifier re-training, Sec. 4): W, b re-initialised and re-trained on the frozen
  representation with class-balanced sampling.
- ``lws`` (learnable weight scaling, Sec. 4): W, b frozen; per-class scales f_c (initialised at 1)
  learnt with class-balanced sampling, logits f_c * (w_c x + b_c) (their ``TauNormClassifier``,
  which scales the biased logits).
- ``tau_norm`` (tau-normalised classifier, Sec. 4): no stage two; at evaluation
  w_c / ||w_c||^tau without the bias (their ``tau_norm.py``'s ``pnorm`` and dot product).

As their code, the frozen representation keeps the training mode (BatchNorm statistics move,
dropout stays) and only its parameters stop learning. Deliberate differences (options or
notes): stage two uses this code base's optimiser (Adam at ``train.lr``, a fresh step schedule)
rather than their SGD at 0.2 with a cosine schedule; the loss is the baselines' BCE rather than
softmax cross-entropy; class-balanced sampling draws as many videos per epoch as the training set
has (``class_balanced_draws``, CBS's sampler) rather than their 4 per class in turn.

tau: Kang et al. pick tau on a validation set (their ``tau_norm.py`` sweeps 0 to 2). The pipeline
has no validation split, and a per-class positive scale does not change the ranking of videos
within a class: mAP and head / medium / tail mAP do not depend on tau, only top-1 / top-5 do. The
default tau = 1 (full L2 normalisation); set ``train.tau_norm.tau`` to sweep it. The same holds
for LWS's scales: its per-class AP equals stage one's whenever every f_c stays positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from move.errors import MoveError
from move.training.methods.cbs import class_balanced_order
from move.training.methods.common import BASELINE, shuffled
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import RunContext
    from move.training.settings import TrainSettings

RETRAIN_HELP = (
    "first epoch of stage two (classifier learning, class-balanced sampling); below train.epochs "
    "(90 of 100: Kang et al.'s 90 + 10 epochs)"
)


@dataclass(frozen=True)
class CrtSettings:
    """Where stage two (classifier re-training) starts."""

    retrain_epoch: int = setting(90, RETRAIN_HELP, minimum=1)


@dataclass(frozen=True)
class LwsSettings:
    """Where stage two (learning the per-class scales) starts."""

    retrain_epoch: int = setting(90, RETRAIN_HELP, minimum=1)


@dataclass(frozen=True)
class TauNormSettings:
    """The normalisation exponent tau."""

    tau: float = setting(
        1.0,
        "evaluation weights w_c / ||w_c||^tau, bias dropped (Kang et al. sweep 0 to 2 on a "
        "validation set; mAP does not depend on it)",
        minimum=0,
    )


def two_stages(epoch: int, options: Any) -> int:
    """Stage 0 before ``retrain_epoch``, stage 1 (the classifier's) from it on."""
    return int(epoch >= options.retrain_epoch)


def stage_sampler(
    labels: list[list[int]], n_classes: int, rng: np.random.Generator, epoch: int, options: Any
):
    """Instance-balanced (shuffled) in stage one, class-balanced in stage two (Kang et al.)."""
    if two_stages(epoch, options):
        return class_balanced_order(labels, n_classes, rng, epoch, options)
    return shuffled(labels, n_classes, rng, epoch, options)


def last_layer(model) -> torch.nn.Linear:
    """The classifier W, b of Kang et al.: the last linear layer of ``model.classifier``."""
    return model.classifier[-1]


def check_reaches_stage_two(context: RunContext) -> None:
    """A ``retrain_epoch`` at or past the last epoch would silently train the baseline."""
    s = context.options
    if s.retrain_epoch >= context.settings.epochs:
        raise MoveError(
            f"train.{context.method.name}.retrain_epoch is {s.retrain_epoch} but train.epochs is "
            f"{context.settings.epochs}: set retrain_epoch below epochs so stage two runs"
        )


def freeze_all_but(model, trained: list) -> None:
    """Stop learning every parameter except ``trained``."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in trained:
        parameter.requires_grad_(True)


def crt_optimizer(model, context: RunContext) -> torch.optim.Optimizer:
    """Stage one: Adam over everything. Stage two: W, b re-initialised (``reset_parameters``, as
    their stage-two classifier starts from random weights), the rest frozen."""
    import torch

    check_reaches_stage_two(context)
    if two_stages(context.epoch, context.options):
        layer = last_layer(model)
        layer.reset_parameters()
        freeze_all_but(model, list(layer.parameters()))
        return torch.optim.Adam(layer.parameters(), lr=context.settings.lr)
    return torch.optim.Adam(model.parameters(), lr=context.settings.lr)


def scaled_logits(logits: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """LWS: f_c * (w_c x + b_c), per-class scales on the biased logits (their ``x *= scales``)."""
    return logits * scales


def normalised_weight(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """tau-normalisation: each class's row w_c / ||w_c||_2^tau."""
    return weight / weight.norm(dim=1, keepdim=True).pow(tau)


def build_lws(n_classes: int, settings: TrainSettings, options: Any):
    """``VideoClassifier`` whose logits are multiplied by learnable per-class ``scales`` (ones
    until stage two learns them)."""
    import torch

    from move.training.model import VideoClassifier

    class ScaledClassifier(VideoClassifier):
        """Logits f_c * (w_c h + b_c); frame-wise, the frames' logits are averaged first."""

        def __init__(self):
            super().__init__(n_classes, settings.model)
            self.scales = torch.nn.Parameter(torch.ones(n_classes))

        def head(self, representation: torch.Tensor) -> torch.Tensor:
            return scaled_logits(super().head(representation), self.scales)

    return ScaledClassifier()


def lws_optimizer(model, context: RunContext) -> torch.optim.Optimizer:
    """Stage one: Adam over everything but the scales (held at 1). Stage two: the scales only."""
    import torch

    check_reaches_stage_two(context)
    if two_stages(context.epoch, context.options):
        freeze_all_but(model, [model.scales])
        return torch.optim.Adam([model.scales], lr=context.settings.lr)
    model.scales.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(trained, lr=context.settings.lr)


def build_tau_norm(n_classes: int, settings: TrainSettings, options: Any):
    """``VideoClassifier`` that evaluates with the tau-normalised last layer, bias dropped."""
    import torch.nn.functional as F

    from move.training.model import VideoClassifier

    class TauNormalisedClassifier(VideoClassifier):
        """Training: as the baseline. Evaluation: the last layer replaced by w_c / ||w_c||^tau."""

        def head(self, representation: torch.Tensor) -> torch.Tensor:
            if self.training:
                return super().head(representation)
            hidden = self.classifier[:-1](representation)
            weight = normalised_weight(last_layer(self).weight, options.tau)
            logits = F.linear(hidden, weight)
            return logits if self.settings.aggregators else logits.mean(dim=1)

    return TauNormalisedClassifier(n_classes, settings.model)


register_method(
    Method(
        "crt",
        "cRT",
        **(BASELINE | {"sampler": stage_sampler}),
        settings=CrtSettings,
        configure_optimizer=crt_optimizer,
        stage=two_stages,
        summary="classifier re-training, class-balanced (Kang et al. 2020)",
    )
)
register_method(
    Method(
        "lws",
        "LWS",
        **(BASELINE | {"sampler": stage_sampler}),
        settings=LwsSettings,
        build_model=build_lws,
        configure_optimizer=lws_optimizer,
        stage=two_stages,
        summary="learnable per-class weight scaling (Kang et al. 2020)",
    )
)
register_method(
    Method(
        "tau_norm",
        "τ-norm",
        **BASELINE,
        settings=TauNormSettings,
        build_model=build_tau_norm,
        summary="tau-normalised classifier at evaluation (Kang et al. 2020)",
    )
)
