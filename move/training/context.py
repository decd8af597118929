"""What a method's hooks receive: one training batch, and the run's context (its method, the
method's settings, class statistics, RNG).

``RunContext.state`` belongs to the method (e.g. FrameStack's per-class AP); it is saved with the
resumable checkpoint after every epoch, so a resumed run continues from the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from move.training.registry import Method
from move.training.settings import TrainSettings


@dataclass
class Batch:
    """Frame features ``x [B, T, D]``, multi-hot ``targets [B, C]``, video indices, anchor classes.

    ``anchor`` is the class a class-balanced sampler drew each video for (-1 when none).
    """

    x: torch.Tensor
    targets: torch.Tensor
    index: torch.Tensor
    anchor: torch.Tensor


@dataclass
class RunContext:
    """The run as the hooks see it: settings, the method resolved once and its own settings
    (``options``, its dataclass), tau (Eq. 7), train counts, epoch, RNG, method state, the
    number of training videos (a multi-label class prior n_c / videos needs it) and the network
    (for ``end_of_epoch`` hooks that constrain weights, e.g. weight balancing's MaxNorm)."""

    settings: TrainSettings
    method: Method
    options: Any
    tau: torch.Tensor
    counts: np.ndarray
    epoch: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator)
    state: dict[str, Any] = field(default_factory=dict)
    videos: int = 0
    model: Any = None
