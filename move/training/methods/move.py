"""MOVE (ours): minority-oriented vicinity expansion, as the authors' ``MOVE.py``: the Dynamic
Frame Sampler's two views (Eq. 8-10), dynamic extrapolation (Eq. 11) and calibrated
interpolation (Eq. 12) on the aggregated features. Each part can be switched off (Table 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import bce, partners, shuffled
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext
    from move.training.vicinity import DfsMasks


@dataclass(frozen=True)
class MoveSettings:
    """MOVE's parts and their constants (the authors' code)."""

    dfs: bool = setting(
        True, "the Dynamic Frame Sampler (Eq. 8-9); its two views feed extrapolation"
    )
    dfs_key_mask: str = setting(
        "code",
        "PSA key mask under DFS: code = hide a DFS subset from the keys (authors' code), "
        "subset = keep only it, none",
        enum=["code", "subset", "none"],
    )
    dfs_scope: str = setting(
        "per_sample",
        "per_sample: DFS for every video (authors' VideoLT script); first_sample: only the "
        "batch's first video gets DFS, the others take frames 0 and 1 as PSA queries and u = v in "
        "the codebook (authors' MiniKinetics script, which produced Table 3)",
        enum=["per_sample", "first_sample"],
    )
    extrapolation: bool = setting(True, "dynamic extrapolation (Eq. 11, Ex. in Table 4)")
    interpolation: bool = setting(True, "calibrated interpolation (Eq. 12, In. in Table 4)")
    lower_bound: float = setting(
        3.0, "DFS's lower bound sigma on the frames kept (Eq. 9)", minimum=0
    )
    extrapolation_alpha: float = setting(
        2.0, "omega ~ Beta(alpha, alpha), one per batch (Eq. 11)", exclusiveMinimum=0
    )
    interpolation_alpha: float = setting(
        1.0, "lambda ~ Beta(alpha, alpha), one per batch (Eq. 12)", exclusiveMinimum=0
    )
    calib_bias: float = setting(
        0.5, "gamma: labels of interpolated samples times (1 - tau_s) + gamma (Eq. 12)", minimum=0
    )


def dfs_masks(targets: torch.Tensor, n_frames: int, context: RunContext) -> DfsMasks:
    """This batch's DFS masks (Eq. 8-10): every video's, or the MiniKinetics script's first only."""
    from move.training import vicinity

    s, g = context.options, context.generator
    if s.dfs_scope == "first_sample":
        low = vicinity.batch_lower_bound(context.tau, targets, n_frames, s.lower_bound)
        return vicinity.first_sample_dfs_masks(low, len(targets), n_frames, s.dfs_key_mask, g)
    low = vicinity.dfs_lower_bound(context.tau, targets, n_frames, s.lower_bound)
    return vicinity.per_sample_dfs_masks(low, n_frames, s.dfs_key_mask, g)


def move_transform(model, batch: Batch, context: RunContext):
    """MOVE's vicinity (Eq. 8-12): DFS views u, v (Eq. 10), dynamic extrapolation (Eq. 11, one
    omega per batch), calibrated interpolation (Eq. 12, one lambda per batch); labels of the
    interpolated samples scaled by (1 - tau_s) + gamma. Without DFS, u = v = z.
    """
    from move.training import vicinity

    s, x, targets = context.options, batch.x, batch.targets
    if s.dfs:
        masks = dfs_masks(targets, x.shape[1], context)
        key = None if masks.key is None else masks.key.to(x.device)
        views = model.aggregate_views(x, masks.query.to(x.device), key, masks.codebook.to(x.device))
        u, v = views[:, 0], views[:, 1]
    else:
        u = v = model.aggregate(x)
    z = u
    if s.extrapolation:
        omega = vicinity.sample_extrapolation_weight(s.extrapolation_alpha, context.generator)
        z = vicinity.dynamic_extrapolation(u, v, omega)
    if s.interpolation:
        lam = vicinity.sample_interpolation_weight(s.interpolation_alpha, context.generator)
        permutation = partners(len(x), context, x.device)
        z, targets = vicinity.calibrated_interpolation(
            z, targets, context.tau, lam, permutation, s.calib_bias
        )
    return model.classifier(z), targets


register_method(
    Method(
        "move",
        "MOVE (ours)",
        loss=bce,
        transform=move_transform,
        sampler=shuffled,
        needs_aggregators=True,
        grad_clip=None,
        settings=MoveSettings,
        summary="minority-oriented vicinity expansion",
    )
)
