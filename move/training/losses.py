"""The baselines MOVE is compared with (Tables 1-3): losses, re-sampling and input augmentations.

As in the authors' code (VideoLT/ops/losses.py, ops/Augment.py, ops/feature_loader.py, from the
VideoLT/Framestack code base): every loss is a binary cross-entropy on logits (multi-label),
optionally weighted per class. How each method combines these is ``move.training.methods``.

- plain: BCE.
- LDAM-DRW: label-distribution-aware margins m_c = max_m * n_c^(-1/4) / max(n^(-1/4)), logits of
  positives lowered by the sample's margin, scaled by s = 30; deferred re-weighting (DRW) switches
  the per-class weights from uniform to class-balanced (beta = 0.9999) at ``drw_epoch``.
- EQL: negatives of tail classes (count <= 100 in the code) are ignored with probability gamma.
- CB loss: BCE weighted by the class-balanced effective-number weights (beta = 0.9999 in the code).
- CBS: class-balanced sampling of training videos (``class_balanced_draws``); the loss masks a
  video's other positive labels out and sums over classes (``anchor_masked_bce``).
- Mixup: representations (frames, or the aggregated 3072-d features with Agg) and labels of two
  videos mixed with lambda ~ Beta(1, 1).
- Framestack: frames of two videos stacked in proportion to their classes' AP, focal loss
  (``focal_loss``, gamma = 1).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy on logits, mean over samples and classes (the code's ``BCELoss``)."""
    return F.binary_cross_entropy_with_logits(logits, targets, weight=weight)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Binary focal loss, mean over samples and classes: (1 - p_t)^gamma * BCE, p_t = exp(-BCE).

    As the code's ``FocalLoss`` (alpha = 1), which its FrameStack scripts train with (gamma = 1).
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return ((1 - torch.exp(-bce)) ** gamma * bce).mean()


def anchor_masked_bce(
    logits: torch.Tensor, targets: torch.Tensor, anchor: torch.Tensor
) -> torch.Tensor:
    """CBS's loss as the code: BCE with the video's *other* positive labels masked out, summed
    over classes and averaged over the batch. ``anchor [B]`` is the class each video was drawn
    for (``class_balanced_draws``); mask = 1 - (y - onehot(anchor)).
    """
    anchor_hot = F.one_hot(anchor.long(), targets.shape[1]).to(targets)
    mask = 1 - (targets - anchor_hot)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (bce * mask).sum(dim=1).mean()


def class_balanced_weights(counts: np.ndarray | torch.Tensor, beta: float = 0.9999) -> torch.Tensor:
    """Per-class weights (1 - beta) / (1 - beta^n_c), normalised to sum to C (Cui et al. 2019).

    Classes with no training video count as 1 so that the weight stays finite.
    """
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    effective = 1.0 - np.power(beta, n)
    weights = (1.0 - beta) / effective
    return torch.tensor(weights / weights.sum() * len(n), dtype=torch.float32)


def ldam_margins(counts: np.ndarray | torch.Tensor, max_margin: float = 0.5) -> torch.Tensor:
    """LDAM's per-class margins n_c^(-1/4), rescaled so the largest is ``max_margin``."""
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    margins = 1.0 / np.sqrt(np.sqrt(n))
    return torch.tensor(margins * (max_margin / margins.max()), dtype=torch.float32)


def drw_weights(
    counts: np.ndarray | torch.Tensor, epoch: int, drw_epoch: int, beta: float = 0.9999
) -> torch.Tensor:
    """Deferred re-weighting: uniform weights before ``drw_epoch``, class-balanced from it on."""
    return class_balanced_weights(counts, beta if epoch >= drw_epoch else 0.0)


def ldam_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    margins: torch.Tensor,
    scale: float = 30.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """LDAM for BCE as the code: positives' logits minus the sample's summed margin, times ``scale``."""
    batch_margin = (targets @ margins.to(logits)).unsqueeze(1)  # [B, 1]
    shifted = torch.where(targets > 0, logits - batch_margin, logits)
    return bce_loss(scale * shifted, targets, weight)


def eql_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    tail_classes: torch.Tensor,
    gamma: float = 1.76e-3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Equalization loss: w = 1 - beta * T(tail class) * (1 - y), beta ~ Bernoulli(gamma) per entry.

    As the code: a random share gamma of tail-class negatives is dropped from the BCE.
    """
    draws = torch.rand(logits.shape, generator=generator).to(logits.device)
    beta = (draws >= 1 - gamma).float()
    weight = 1 - beta * tail_classes.to(logits).unsqueeze(0) * (1 - targets)
    return bce_loss(logits, targets, weight)


def mixup(
    x: torch.Tensor, targets: torch.Tensor, lam: float, permutation: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input mixup on frame features ``[B, T, D]`` and labels: lam * a + (1 - lam) * b."""
    return (
        lam * x + (1 - lam) * x[permutation],
        lam * targets + (1 - lam) * targets[permutation],
    )


def framestack(
    x: torch.Tensor, targets: torch.Tensor, class_ap: torch.Tensor, permutation: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """FrameStack: each video keeps T - F_j of its frames and takes F_j of a partner's.

    beta = a_i / (a_i + a_j) with a = the mean over classes of target * AP (last epoch's per-class
    AP); 0.5 when both are ~0. F_j = floor(beta * T) partner frames, evenly spaced, come first;
    the label is y_i * (1 - beta) + y_j * beta. A well-recognised video lends its place.
    """
    batch, frames, _ = x.shape
    sample_ap = (targets * class_ap.to(targets).unsqueeze(0)).mean(dim=1)
    partner_ap = sample_ap[permutation]
    total = sample_ap + partner_ap
    beta = torch.where(
        total < 1e-5, torch.full_like(total, 0.5), sample_ap / total.clamp(min=1e-12)
    )
    stacked = []
    for i in range(batch):
        f_j = int(float(beta[i]) * frames)
        f_i = frames - f_j
        j_index = torch.from_numpy(np.linspace(0, frames - 1, f_j).astype(np.int64))
        i_index = torch.from_numpy(np.linspace(0, frames - 1, f_i).astype(np.int64))
        stacked.append(torch.cat([x[permutation[i]][j_index], x[i][i_index]], dim=0))
    mixed_targets = targets * (1 - beta).unsqueeze(1) + targets[permutation] * beta.unsqueeze(1)
    return torch.stack(stacked), mixed_targets


def class_balanced_draws(
    labels: list[list[int]], n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """CBS: ``n_samples`` (video index, class) draws, each a class picked uniformly, then a video of it.

    As the code's ``ResamplingDataset_Mask``, except that classes without a training video are
    never picked (the code would fail on them).
    """
    by_class: dict[int, list[int]] = {}
    for index, classes in enumerate(labels):
        for c in classes:
            by_class.setdefault(c, []).append(index)
    classes = np.array(sorted(by_class))
    picked = rng.choice(classes, size=n_samples)
    videos = np.array([by_class[c][rng.integers(len(by_class[c]))] for c in picked], dtype=np.int64)
    return videos, picked.astype(np.int64)
