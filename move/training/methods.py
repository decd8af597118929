"""The built-in methods, each one ``register_method`` call: MOVE and the baselines of Tables 1-3.

Each follows the authors' script of that method (VideoLT ``base_main.py`` / ``base_main_Agg.py``
/ ``MOVE.py``, the Framestack scripts): every baseline clips the classifier's gradient norm at 20
(their ``--gd 20``), MOVE clips nothing. Maths lives in ``move.training.losses`` and ``move.training.vicinity``;
this module only says which piece each method uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from move.lazy import LazyModule
from move.training.registry import Method, register_method

if TYPE_CHECKING:
    from move.training.context import Batch, RunContext
    from move.training.model import VideoClassifier
    from move.training.vicinity import DfsMasks

# imported on first use: listing the methods (config validation, CLI help) stays torch-free
torch = LazyModule("torch")
losses = LazyModule("move.training.losses")
vicinity = LazyModule("move.training.vicinity")
metrics = LazyModule("move.training.metrics")


# --- shared pieces ----------------------------------------------------------------------------


def shuffled(labels: list[list[int]], n_classes: int, rng: np.random.Generator):
    """Every training video once, in a random order (the code's ``shuffle=True``); no anchors."""
    return rng.permutation(len(labels)), None


def plain_transform(model: VideoClassifier, batch: Batch, context: RunContext):
    """No transform: the model's logits on the batch, its own targets."""
    return model(batch.x), batch.targets


def bce(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """BCE on logits, mean over samples and classes (the code's ``BCELoss``)."""
    return losses.bce_loss(logits, targets)


def _shuffle(n: int, context: RunContext, device: torch.device) -> torch.Tensor:
    """A random permutation of ``n`` from the run's generator (partners for mixing)."""
    return torch.randperm(n, generator=context.generator).to(device)


# --- loss-only baselines ----------------------------------------------------------------------


def ldam_drw(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """LDAM margins, re-weighted class-balanced from ``drw_epoch`` on (the code's ``LDAM``)."""
    s = context.settings
    margins = losses.ldam_margins(context.counts, s.ldam_max_margin).to(logits.device)
    weight = losses.drw_weights(context.counts, context.epoch, s.drw_epoch, s.cb_beta).to(
        logits.device
    )
    return losses.ldam_loss(logits, targets, margins, s.ldam_scale, weight)


def eql(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Equalization loss; its tail set is the classes with at most ``eql_tail_max`` videos
    (100 in the code, whatever the evaluation groups)."""
    tail = torch.from_numpy(context.counts <= context.settings.eql_tail_max).float()
    return losses.eql_loss(logits, targets, tail, context.settings.eql_gamma, context.generator)


def cb_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Class-balanced BCE (effective number of samples, beta = ``cb_beta``)."""
    weight = losses.class_balanced_weights(context.counts, context.settings.cb_beta).to(
        logits.device
    )
    return losses.bce_loss(logits, targets, weight)


def cbs_draws(labels: list[list[int]], n_classes: int, rng: np.random.Generator):
    """As many class-balanced draws as videos; each video's anchor is the class it was drawn for."""
    return losses.class_balanced_draws(labels, len(labels), rng)


def cbs_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """CBS's masked BCE: other positive labels out, summed over classes (``anchor_masked_bce``)."""
    return losses.anchor_masked_bce(logits, targets, batch.anchor)


# --- batch transforms -------------------------------------------------------------------------


def mixup_transform(model: VideoClassifier, batch: Batch, context: RunContext):
    """Mixup of what the classifier reads, lambda ~ Beta(alpha, alpha) per batch: the frames
    without aggregators, the aggregated 3072-d features with them (as the code's Agg script)."""
    lam = vicinity.sample_interpolation_weight(context.settings.mixup_alpha, context.generator)
    permutation = _shuffle(len(batch.x), context, batch.x.device)
    mixed, targets = losses.mixup(model.represent(batch.x), batch.targets, lam, permutation)
    return model.head(mixed), targets


def framestack_transform(model: VideoClassifier, batch: Batch, context: RunContext):
    """FrameStack as the code: from epoch ``framestack_warmup`` on, the first ``framestack_share``
    of the batch is stacked with partners from that share, by last epoch's per-class AP.

    The AP is the code's running one: after the training forward, a no-grad forward of the
    unstacked batch (train mode) is kept for ``framestack_end_of_epoch``.
    """
    s, x, targets = context.settings, batch.x, batch.targets
    stacked = int(len(x) * s.framestack_share)
    if context.epoch >= s.framestack_warmup and stacked > 0:
        class_ap = context.state.get("class_ap", torch.zeros(targets.shape[1]))
        permutation = _shuffle(stacked, context, x.device)
        mixed_x, mixed_y = losses.framestack(x[:stacked], targets[:stacked], class_ap, permutation)
        x = torch.cat([mixed_x, x[stacked:]])
        targets = torch.cat([mixed_y, targets[stacked:]])
    logits = model(x)
    with torch.no_grad():
        scores = torch.sigmoid(model(batch.x)).cpu()
    context.state.setdefault("epoch_scores", []).append((scores, batch.targets.cpu()))
    return logits, targets


def framestack_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Focal loss with ``focal_gamma`` (1 in the code's FrameStack scripts)."""
    return losses.focal_loss(logits, targets, context.settings.focal_gamma)


def framestack_end_of_epoch(context: RunContext) -> None:
    """Per-class AP over the epoch's training batches (0 for classes without a positive)."""
    pairs = context.state.pop("epoch_scores", [])
    if not pairs:
        return
    scores = torch.cat([s for s, _ in pairs]).numpy()
    targets = torch.cat([t for _, t in pairs]).numpy()
    aps = np.nan_to_num(metrics.per_class_average_precision(scores, targets), nan=0.0)
    context.state["class_ap"] = torch.from_numpy(aps).float()


# --- MOVE -------------------------------------------------------------------------------------


def dfs_masks(targets: torch.Tensor, n_frames: int, context: RunContext) -> DfsMasks:
    """This batch's DFS masks (Eq. 8-10): every video's, or the MiniKinetics script's first only."""
    s, g = context.settings, context.generator
    if s.dfs_scope == "first_sample":
        low = vicinity.batch_lower_bound(context.tau, targets, n_frames, s.lower_bound)
        return vicinity.first_sample_dfs_masks(low, len(targets), n_frames, s.dfs_key_mask, g)
    low = vicinity.dfs_lower_bound(context.tau, targets, n_frames, s.lower_bound)
    return vicinity.per_sample_dfs_masks(low, n_frames, s.dfs_key_mask, g)


def move_transform(model: VideoClassifier, batch: Batch, context: RunContext):
    """MOVE's vicinity (Eq. 8-12) as the authors' ``MOVE.py``: DFS views u, v (Eq. 10), dynamic
    extrapolation (Eq. 11, one omega per batch), calibrated interpolation (Eq. 12, one lambda per
    batch); labels of the interpolated samples scaled by (1 - tau_s) + gamma. Each part can be
    switched off (Table 4); without DFS, u = v = z.
    """
    s, x, targets = context.settings, batch.x, batch.targets
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
        permutation = _shuffle(len(x), context, x.device)
        z, targets = vicinity.calibrated_interpolation(
            z, targets, context.tau, lam, permutation, s.calib_bias
        )
    return model.classifier(z), targets


# --- the registry entries ---------------------------------------------------------------------

BASELINE = dict(loss=bce, transform=plain_transform, sampler=shuffled, grad_clip=20.0)

register_method(Method("plain", "Baseline", **BASELINE, summary="BCE"))
register_method(
    Method("ldam_drw", "LDAM-DRW", **(BASELINE | {"loss": ldam_drw}), summary="LDAM + DRW")
)
register_method(Method("eql", "EQL", **(BASELINE | {"loss": eql}), summary="equalization loss"))
register_method(
    Method(
        "cbs",
        "CBS",
        **(BASELINE | {"loss": cbs_loss, "sampler": cbs_draws}),
        summary="class-balanced sampling, masked summed BCE",
    )
)
register_method(
    Method("cb_loss", "CB Loss", **(BASELINE | {"loss": cb_loss}), summary="class-balanced BCE")
)
register_method(
    Method("mixup", "Mixup", **(BASELINE | {"transform": mixup_transform}), summary="mixup")
)
register_method(
    Method(
        "framestack",
        "Framestack",
        **(BASELINE | {"loss": framestack_loss, "transform": framestack_transform}),
        end_of_epoch=framestack_end_of_epoch,
        summary="FrameStack by running per-class AP, focal loss",
    )
)
register_method(
    Method(
        "move",
        "MOVE (ours)",
        loss=bce,
        transform=move_transform,
        sampler=shuffled,
        needs_aggregators=True,
        grad_clip=None,
        summary="minority-oriented vicinity expansion",
    )
)
