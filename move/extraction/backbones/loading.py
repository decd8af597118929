"""Building a registered backbone with its weights, and loading checkpoint files into it.

``create_backbone(name, weights)`` is the one door in (as timm's ``create_model``): the entry of
``move.extraction.backbones.get_backbone(name)`` builds the network, seeded, and loads the
weights: a name or URL (downloaded once and verified by ``move.extraction.weights``), a local
checkpoint file, or ``none`` (seeded random init).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from move.errors import MoveError
from move.extraction.backbones import get_backbone
from move.extraction.backbones.checkpoints import load_backbone_weights
from move.extraction.weights import Weights, resolve_weights


def create_backbone(name: str, weights: Weights | str | Path | None = None) -> nn.Module:
    """Build backbone ``name`` in eval mode with ``weights`` (name, URL, file, resolved, or none)."""
    entry = get_backbone(name)
    if not isinstance(weights, Weights):
        weights = verified_weights(name, weights)  # before building: a bad name fails fast
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # 'none' = random init, but the same one every run (resume, shards)
        model = entry.build()
    if weights.path is not None:
        (entry.load_weights or load_backbone_weights)(model, weights.path)
    return model.eval()


def checkpoint_check(backbone: str) -> Callable[[Path], None]:
    """Content check of a weights file for ``backbone``: it loads with ``weights_only=True`` and
    its keys and shapes fit. Raises ``MoveError`` saying what is wrong, without the file's name
    (``is not a PyTorch checkpoint (…)``, ``does not fit the backbone (missing: …)``)."""

    def check(path: Path) -> None:
        try:
            model = create_backbone(backbone, None)
            (get_backbone(backbone).load_weights or load_backbone_weights)(model, path)
        except MoveError as error:
            raise MoveError(str(error).replace(f"weights file {path} ", "")) from None

    return check


def verified_weights(backbone: str, weights: str | Path | None) -> Weights:
    """``none``, a name, a URL or a local file -> the checkpoint file and its sha256; a named or
    URL checkpoint downloaded (or found cached) is verified whole, by hash and by content."""
    return resolve_weights(backbone, weights, checkpoint_check(backbone))
