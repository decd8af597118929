"""MOVE's minority-oriented vicinity (Sec. 3 of the paper): tau, DFS, extrapolation, interpolation.

Pure tensor functions, used only at training time. Equation numbers refer to the AAAI 2023 paper.
"""

from __future__ import annotations

import torch


def tail_weighted_criterion(class_counts: torch.Tensor) -> torch.Tensor:
    """Eq. 7: tau_s = (q_s - q_min) / (q_max - q_min), per-class counts min-max normalised to [0, 1].

    All-equal counts (no imbalance) give tau = 1 for every class, i.e. treated as head.
    """
    counts = class_counts.double()
    span = counts.max() - counts.min()
    if span == 0:
        return torch.ones_like(counts, dtype=torch.float32)
    return ((counts - counts.min()) / span).float()


def sample_tau(tau: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """tau of each sample's class: for multi-label targets, its rarest (smallest tau) label."""
    masked = torch.where(
        targets > 0, tau.expand_as(targets), torch.full_like(targets, float("inf"))
    )
    per_sample = masked.min(dim=1).values
    return torch.where(torch.isinf(per_sample), torch.ones_like(per_sample), per_sample)


def dynamic_frame_mask(
    sample_tau_values: torch.Tensor,
    n_frames: int,
    lower_bound: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Eq. 8-9, the Dynamic Frame Sampler: a binary frame mask ``[B, T]`` per sample.

    |I_s| ~ U(max(floor(tau_s * T), sigma), T) frames are kept (sigma = ``lower_bound``, capped at T),
    chosen uniformly without replacement, so tail samples (small tau) keep fewer frames and vary more.
    """
    batch = sample_tau_values.shape[0]
    device = sample_tau_values.device
    low = torch.clamp(
        torch.maximum(
            torch.floor(sample_tau_values * n_frames),
            torch.full_like(sample_tau_values, lower_bound),
        ),
        max=n_frames,
    )
    low = low.ceil()
    uniform = torch.rand(batch, generator=generator, device="cpu").to(device)
    kept = (low + torch.floor(uniform * (n_frames - low + 1))).clamp(max=n_frames).long()
    ranks = (
        torch.rand(batch, n_frames, generator=generator, device="cpu")
        .to(device)
        .argsort(dim=1)
        .argsort(dim=1)
    )
    return (ranks < kept.unsqueeze(1)).float()


def dynamic_extrapolation(
    u: torch.Tensor, v: torch.Tensor, omega: float | torch.Tensor
) -> torch.Tensor:
    """Eq. 11: z_hat = omega * u + (1 - omega) * v with omega in [1, 2] (label unchanged)."""
    return omega * u + (1 - omega) * v


def sample_extrapolation_weight(
    alpha: float = 2.0, generator: torch.Generator | None = None
) -> float:
    """omega ~ Beta(alpha, alpha) + 1, one draw per batch as in the authors' code."""
    return float(_beta(alpha, generator)) + 1.0


def calibrated_interpolation(
    z: torch.Tensor,
    targets: torch.Tensor,
    tau: torch.Tensor,
    lam: float,
    permutation: torch.Tensor,
    calib_bias: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 12: mix each sample with a shuffled partner; labels scaled per class by (1 - tau_s) + gamma.

    z_tilde = lam * z_i + (1 - lam) * z_j and
    y_tilde_s = min((lam * y_i,s + (1 - lam) * y_j,s) * ((1 - tau_s) + gamma), 1), clipped to [0, 1].
    """
    mixed = lam * z + (1 - lam) * z[permutation]
    labels = (lam * targets + (1 - lam) * targets[permutation]) * ((1 - tau) + calib_bias)
    return mixed, labels.clamp(0.0, 1.0)


def sample_interpolation_weight(
    alpha: float = 1.0, generator: torch.Generator | None = None
) -> float:
    """lambda ~ Beta(alpha, alpha), one draw per batch."""
    return float(_beta(alpha, generator))


def _beta(alpha: float, generator: torch.Generator | None) -> torch.Tensor:
    """A Beta(alpha, alpha) draw from two Gamma draws, using ``generator`` for reproducibility."""
    gammas = torch._standard_gamma(torch.full((2,), float(alpha)), generator=generator)
    return gammas[0] / gammas.sum()
