"""FrameStack (the authors' Framestack scripts): frames of a share of each batch stacked with
partners' by last epoch's per-class AP, and a focal loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from move.training.methods.common import BASELINE, partners
from move.training.registry import Method, register_method, setting

if TYPE_CHECKING:
    import torch

    from move.training.context import Batch, RunContext


@dataclass(frozen=True)
class FramestackSettings:
    """The stacked share, the warm-up and the focal exponent (the authors' values)."""

    share: float = setting(
        0.5, "share of each batch stacked, the first videos (0.5 in the authors' scripts)",
        minimum=0, maximum=1,
    )  # fmt: skip
    warmup: int = setting(
        1, "epochs without stacking (1: epoch 0, as the authors' warm_epoch 0)", minimum=0
    )
    focal_gamma: float = setting(1.0, "focal loss exponent (1 in the authors' scripts)", minimum=0)


def framestack_transform(model, batch: Batch, context: RunContext):
    """From epoch ``warmup`` on, the first ``share`` of the batch is stacked with partners from
    that share, by last epoch's per-class AP.

    The AP is the code's running one: after the training forward, a no-grad forward of the
    unstacked batch (train mode) is kept for ``framestack_end_of_epoch``.
    """
    import torch

    from move.training.losses import framestack

    s, x, targets = context.options, batch.x, batch.targets
    stacked = int(len(x) * s.share)
    if context.epoch >= s.warmup and stacked > 0:
        class_ap = context.state.get("class_ap", torch.zeros(targets.shape[1]))
        permutation = partners(stacked, context, x.device)
        mixed_x, mixed_y = framestack(x[:stacked], targets[:stacked], class_ap, permutation)
        x = torch.cat([mixed_x, x[stacked:]])
        targets = torch.cat([mixed_y, targets[stacked:]])
    logits = model(x)
    with torch.no_grad():
        scores = torch.sigmoid(model(batch.x).float()).cpu()  # float32 under bf16 too
    context.state.setdefault("epoch_scores", []).append((scores, batch.targets.cpu()))
    return logits, targets


def framestack_loss(logits, targets, batch: Batch, context: RunContext) -> torch.Tensor:
    """Focal loss with ``focal_gamma``."""
    from move.training.losses import focal_loss

    return focal_loss(logits, targets, context.options.focal_gamma)


def framestack_end_of_epoch(context: RunContext) -> None:
    """Per-class AP over the epoch's training batches (0 for classes without a positive)."""
    import numpy as np
    import torch

    from move.training.metrics import per_class_average_precision

    pairs = context.state.pop("epoch_scores", [])
    if not pairs:
        return
    scores = torch.cat([s for s, _ in pairs]).numpy()
    targets = torch.cat([t for _, t in pairs]).numpy()
    aps = np.nan_to_num(per_class_average_precision(scores, targets), nan=0.0)
    context.state["class_ap"] = torch.from_numpy(aps).float()


register_method(
    Method(
        "framestack",
        "Framestack",
        **(BASELINE | {"loss": framestack_loss, "transform": framestack_transform}),
        end_of_epoch=framestack_end_of_epoch,
        settings=FramestackSettings,
        summary="FrameStack by running per-class AP, focal loss",
    )
)
