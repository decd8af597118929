"""Logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021) and
Balanced Softmax (Ren et al., "Balanced Meta-Softmax for long-tailed visual recognition",
NeurIPS 2020): the label prior added to the logits in the loss, or taken off them at evaluation.

Two methods, one per form of Menon et al.:

- ``logit_adjusted_loss``: train on f_y(x) + tau * log pi_y (their logit-adjusted loss, Sec. 5,
  Eq. 10; tau = 1 is Ren et al.'s Balanced Softmax, Eq. 4, whose n_y differs from pi_y by a
  constant that the softmax cancels); evaluate the plain logits.
- ``logit_adjustment_post_hoc``: train as the baseline (BCE); evaluate f_y(x) - tau * log pi_y
  (their post-hoc logit adjustment, Sec. 4, Eq. 9), tau = 1 as their experiments.

How the prior enters, per ``form`` (this code base trains every dataset with per-class sigmoids
and BCE, SPEC.md):

- ``sigmoid`` (default, single- and multi-label): each class is its own binary problem with the
  two logits (0, f_c(x)) and the priors (1 - pi_c, pi_c), pi_c = n_c / N (N training videos).
  Eq. 10 on that pair is BCE on f_c(x) + tau * log(pi_c / (1 - pi_c)); Eq. 9 subtracts the same
  log-odds. The shift is the class-prior log-odds bias of Wu et al.'s distribution-balanced loss
  (ECCV 2020).
- ``softmax`` (single-label targets only, e.g. MiniKinetics): Eq. 10 / Eq. 9 as printed, softmax
  cross-entropy over the classes with pi_c = n_c / sum(n); the scores evaluated are the softmax
  probabilities (sigmoid of their log, the same ranking), since softmax logits are only defined up
  to a per-video constant. Multi-label targets are refused.

A per-class constant added to the logits does not change the ranking of videos within a class:
the per-class AP (mAP, head / medium / tail mAP) of ``logit_adjustment_post_hoc`` in the sigmoid
form equals the baseline's; only top-1 / top-5 move. With sigmoids and a classifier bias the
sigmoid loss form equals BCE training from a bias initialised at the prior log-odds.
No public PyTorch code of the authors (Menon et al.'s is TensorFlow): tests check the equations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import BASELINE
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import numpy as np
    import torch

    from move.training.context import Batch, RunContext
    from move.training.settings import TrainSettings

FORMS = ["sigmoid", "softmax"]
FORM_HELP = (
    "sigmoid: per-class BCE with the prior log-odds log(pi_c / (1 - pi_c)), pi_c = n_c / videos "
    "(single- and multi-label); softmax: softmax cross-entropy with log pi_c, pi_c = n_c / sum(n) "
    "(Menon et al.'s Eq. 9-10 as printed; single-label data only)"
)


@dataclass(frozen=True)
class LogitAdjustedLossSettings:
    """The prior's scale tau in the loss (Eq. 10; 1 as Menon et al. and Balanced Softmax)."""

    tau: float = setting(1.0, "scale of the log prior added to the logits in training", minimum=0)
    form: str = setting("sigmoid", FORM_HELP, enum=FORMS)


@dataclass(frozen=True)
class PostHocSettings:
    """The prior's scale tau taken off at evaluation (Eq. 9; 1 as Menon et al.)."""

    tau: float = setting(1.0, "scale of the log prior subtracted at evaluation", minimum=0)
    form: str = setting("sigmoid", FORM_HELP, enum=FORMS)


def log_prior(counts: np.ndarray, videos: int, form: str) -> torch.Tensor:
    """log pi_c (softmax: pi_c = n_c / sum n) or log(pi_c / (1 - pi_c)) (sigmoid: pi_c = n_c / N);
    a class without training videos counts as one, as the class-balanced weights."""
    import numpy as np
    import torch

    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if form == "softmax":
        return torch.tensor(np.log(n / n.sum()), dtype=torch.float32)
    negatives = np.maximum(max(videos, int(n.max())) - n, 1.0)
    return torch.tensor(np.log(n) - np.log(negatives), dtype=torch.float32)


def logit_adjusted_loss(
    logits: torch.Tensor, targets: torch.Tensor, prior: torch.Tensor, tau: float, form: str
) -> torch.Tensor:
    """Eq. 10: the loss on f(x) + tau * log prior; softmax cross-entropy (one-hot targets) or BCE,
    mean over samples (and classes, for BCE, as the baselines' loss)."""
    import torch.nn.functional as F

    adjusted = logits + tau * prior.to(logits)
    if form == "softmax":
        return F.cross_entropy(adjusted, targets.argmax(dim=1))
    return F.binary_cross_entropy_with_logits(adjusted, targets)


def post_hoc_scores(logits: torch.Tensor, prior: torch.Tensor, tau: float, form: str):
    """Eq. 9: f(x) - tau * log prior, as log-probabilities for the softmax form."""
    adjusted = logits - tau * prior.to(logits)
    return adjusted.log_softmax(dim=1) if form == "softmax" else adjusted


def check_single_label(targets: torch.Tensor, form: str) -> None:
    """The softmax form needs exactly one label per video; refuse a multi-label batch."""
    from move.errors import MoveError

    if form == "softmax" and not bool((targets.sum(dim=1) == 1).all()):
        raise MoveError(
            "logit adjustment's softmax form needs one label per video, and this training set is "
            "multi-label: set form: sigmoid in the method's train section"
        )


def build_adjusted_classifier(n_classes: int, settings: TrainSettings, options, post_hoc: bool):
    """``VideoClassifier`` with a ``log_prior`` buffer (saved in the checkpoint) whose evaluation
    output is Eq. 9's (post-hoc) or, for the softmax form, log-probabilities."""
    import torch

    from move.training.model import VideoClassifier

    class PriorAdjustedClassifier(VideoClassifier):
        """Training: raw logits. Evaluation: logits - tau * log prior (post-hoc), log-softmax
        (softmax form)."""

        def __init__(self):
            super().__init__(n_classes, settings.model)
            self.register_buffer("log_prior", torch.zeros(n_classes))
            self.evaluation_tau = options.tau if post_hoc else 0.0
            self.form = options.form

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = super().forward(x)
            if self.training:
                return logits
            return post_hoc_scores(logits, self.log_prior, self.evaluation_tau, self.form)

    return PriorAdjustedClassifier()


def store_prior(model, context: RunContext):
    """At the run's start: the training prior into the model (the checkpoint keeps it), then
    the authors' optimiser (Adam at ``lr``)."""
    import torch

    with torch.no_grad():
        model.log_prior.copy_(log_prior(context.counts, context.videos, context.options.form))
    return torch.optim.Adam(model.parameters(), lr=context.settings.lr)


def adjusted_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Eq. 10 with the run's prior and ``tau``."""
    s = context.options
    check_single_label(targets, s.form)
    prior = log_prior(context.counts, context.videos, s.form)
    return logit_adjusted_loss(logits, targets, prior, s.tau, s.form)


def post_hoc_training_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """The baseline's loss in the form evaluated: BCE, or softmax cross-entropy (tau = 0)."""
    s = context.options
    check_single_label(targets, s.form)
    prior = log_prior(context.counts, context.videos, s.form)
    return logit_adjusted_loss(logits, targets, prior, 0.0, s.form)


register_method(
    Method(
        "logit_adjusted_loss",
        "Logit-adjusted loss",
        **(BASELINE | {"loss": adjusted_loss}),
        settings=LogitAdjustedLossSettings,
        build_model=lambda n, settings, options: build_adjusted_classifier(
            n, settings, options, post_hoc=False
        ),
        configure_optimizer=store_prior,
        summary="logit-adjusted loss / Balanced Softmax (Menon et al. 2021, Ren et al. 2020)",
    )
)
register_method(
    Method(
        "logit_adjustment_post_hoc",
        "Post-hoc logit adjustment",
        **(BASELINE | {"loss": post_hoc_training_loss}),
        settings=PostHocSettings,
        build_model=lambda n, settings, options: build_adjusted_classifier(
            n, settings, options, post_hoc=True
        ),
        configure_optimizer=store_prior,
        summary="the log prior taken off the logits at evaluation (Menon et al. 2021)",
    )
)
