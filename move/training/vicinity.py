"""MOVE's minority-oriented vicinity (Sec. 3 of the paper): tau, DFS, extrapolation, interpolation.

Pure tensor functions, used only at training time. Equation numbers refer to the AAAI 2023 paper.
Where the authors' released code (VideoLT/MOVE.py, models/models.py, ops/Augment.py) differs from
the paper's text, the code's behaviour is the default and the docstring says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def tail_weighted_criterion(class_counts: torch.Tensor) -> torch.Tensor:
    """Eq. 7: tau_s = (q_s - q_min) / (q_max - q_min), per-class counts min-max normalised to [0, 1].

    (The code normalises frequencies q_s / sum(q) first; min-max makes that identical.)
    All-equal counts (no imbalance) give tau = 1 for every class, i.e. treated as head.
    """
    counts = class_counts.double()
    span = counts.max() - counts.min()
    if span == 0:
        return torch.ones_like(counts, dtype=torch.float32)
    return ((counts - counts.min()) / span).float()


def dfs_lower_bound(
    tau: torch.Tensor, targets: torch.Tensor, n_frames: int, lower_bound: float = 3.0
) -> torch.Tensor:
    """Eq. 9's lower bound max(floor(tau_s * T), sigma) per sample, ``[B]`` integers in [1, T].

    As the authors' code: each class gets max(tau_s * T, sigma); a sample's bound is the mean of
    that over its labels (multi-label VideoLT), floored. Single-label: max(floor(tau_s T), sigma).
    Capped at T (sigma > T keeps every frame).
    """
    per_class = torch.clamp(tau.float() * n_frames, min=lower_bound)  # [C]
    positive = (targets > 0).float()
    n_labels = positive.sum(1)
    mean = (positive * per_class).sum(1) / n_labels.clamp(min=1)
    mean = torch.where(n_labels > 0, mean, torch.full_like(mean, float(n_frames)))
    return torch.floor(mean + 1e-6).clamp(min=1, max=n_frames).long()


def dynamic_frame_mask(
    low: torch.Tensor, n_frames: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Eq. 8-9, the Dynamic Frame Sampler: binary mask m_{s,t} = 1[t in I_s], ``[B, T]``.

    |I_s| ~ U{low_s, ..., T} (inclusive, as the code's ``random.randint``), and I_s is a uniform
    random subset of that size (without replacement), drawn afresh at every call. ``low`` comes from
    ``dfs_lower_bound``; tail samples (small tau) keep fewer frames and so vary more.
    """
    batch = low.shape[0]
    low = low.detach().cpu().long().clamp(min=0, max=n_frames)
    uniform = torch.rand(batch, generator=generator)
    kept = (low + torch.floor(uniform * (n_frames - low + 1)).long()).clamp(max=n_frames)
    ranks = torch.rand(batch, n_frames, generator=generator).argsort(dim=1).argsort(dim=1)
    return (ranks < kept.unsqueeze(1)).float().to(low.device)


def batch_lower_bound(
    tau: torch.Tensor, targets: torch.Tensor, n_frames: int, lower_bound: float = 3.0
) -> torch.Tensor:
    """Eq. 9's bound as the authors' MiniKinetics script computes it: one value for the batch,
    floor of the mean of max(tau_s * T, sigma) over every label of the batch, ``[1]``.

    (The script wraps the batch's label tensor in a list, so its per-sample loop runs once, over
    the whole batch; see ``first_sample_dfs_masks``.)
    """
    per_class = torch.clamp(tau.float() * n_frames, min=lower_bound)
    weights = (targets > 0).float().sum(0)
    mean = (weights * per_class).sum() / weights.sum().clamp(min=1)
    return torch.floor(mean + 1e-6).clamp(min=1, max=n_frames).long().reshape(1)


@dataclass
class DfsMasks:
    """MOVE's frame masks for one batch (Eq. 8-10): PSA's two query subsets ``query [B, 2, T]``,
    the frames PSA's keys keep ``key [B, T]`` (None: all), the codebook's two views ``codebook
    [B, 2, T]``.
    """

    query: torch.Tensor
    key: torch.Tensor | None
    codebook: torch.Tensor


def per_sample_dfs_masks(
    low: torch.Tensor,
    n_frames: int,
    key_mask: str = "code",
    generator: torch.Generator | None = None,
) -> DfsMasks:
    """DFS for every video, as the authors' VideoLT script (``low`` from ``dfs_lower_bound``).

    Two subsets give PSA's two pooled queries; with ``key_mask`` 'code' a third subset is
    *hidden* from PSA's keys (the code's mask), 'subset' keeps only it, 'none' hides nothing;
    two more subsets are the codebook's views (Eq. 10).
    """
    query = torch.stack([dynamic_frame_mask(low, n_frames, generator) for _ in range(2)], 1)
    key = None
    if key_mask != "none":
        key = dynamic_frame_mask(low, n_frames, generator)
        if key_mask == "code":
            key = 1 - key
    codebook = torch.stack([dynamic_frame_mask(low, n_frames, generator) for _ in range(2)], 1)
    return DfsMasks(query, key, codebook)


def first_sample_dfs_masks(
    low: torch.Tensor,
    batch: int,
    n_frames: int,
    key_mask: str = "code",
    generator: torch.Generator | None = None,
) -> DfsMasks:
    """The authors' MiniKinetics script (which produced Table 3): DFS on the first video only.

    Video 0 gets ``per_sample_dfs_masks`` with the batch-wide bound ``low [1]``
    (``batch_lower_bound``). Every other video: PSA's two queries are its raw frames 0 and 1, no
    key is hidden, and both codebook views are the whole video, so their codebook prototypes are
    equal (u = v there).
    """
    first = per_sample_dfs_masks(low, n_frames, key_mask, generator)
    query = torch.zeros(batch, 2, n_frames)
    query[:, 0, 0] = 1.0
    query[:, 1, 1 % n_frames] = 1.0
    query[0] = first.query[0]
    key = None
    if first.key is not None:
        key = torch.ones(batch, n_frames)
        key[0] = first.key[0]
    codebook = torch.ones(batch, 2, n_frames)
    codebook[0] = first.codebook[0]
    return DfsMasks(query, key, codebook)


def dynamic_extrapolation(
    u: torch.Tensor, v: torch.Tensor, omega: float | torch.Tensor
) -> torch.Tensor:
    """Eq. 11: z_hat = omega * u + (1 - omega) * v with omega in [1, 2] (label unchanged)."""
    return omega * u + (1 - omega) * v


def sample_extrapolation_weight(
    alpha: float = 2.0, generator: torch.Generator | None = None
) -> float:
    """omega ~ Beta(alpha, alpha) + 1, in [1, 2]; one draw per batch as in the authors' code."""
    return float(_beta(alpha, generator)) + 1.0


def calibration_factor(tau: torch.Tensor, calib_bias: float = 0.5) -> torch.Tensor:
    """Eq. 12's per-class label scale (1 - tau_s) + gamma (the code's ``smooth_factor``)."""
    return (1 - tau) + calib_bias


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
    y_tilde_s = clip((lam * y_i,s + (1 - lam) * y_j,s) * ((1 - tau_s) + gamma), 0, 1).
    """
    mixed = lam * z + (1 - lam) * z[permutation]
    labels = (lam * targets + (1 - lam) * targets[permutation]) * calibration_factor(
        tau, calib_bias
    )
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
