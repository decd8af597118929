"""Stage 2, backbones: frame feature extractors created by name, with local-file weights.

``create_backbone(name, weights)`` is the one door in (as timm's ``create_model``). Every
backbone maps frames ``[N, 3, H, W]`` to penultimate features ``[N, 2048]`` through
``forward_features``. Weights come only from a local file (no hub downloads) or ``none``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from move.errors import MoveError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone needs from the decoder and gives back."""

    name: str
    feature_dim: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class TimmBackbone(nn.Module):
    """A timm image model without its classifier: pooled last-stage features per frame."""

    def __init__(self, timm_name: str):
        super().__init__()
        import timm

        self.model = timm.create_model(timm_name, pretrained=False, num_classes=0)
        self.feature_dim = self.model.num_features

    def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[N, 3, H, W]`` (normalised) -> features ``[N, feature_dim]``."""
        return self.model(frames)

    forward = forward_features


BACKBONES = {
    "resnet50": lambda: TimmBackbone("resnet50"),
    "resnet101": lambda: TimmBackbone("resnet101"),
}


def available_backbones() -> list[str]:
    """Names ``create_backbone`` accepts."""
    return sorted(BACKBONES)


def create_backbone(name: str, weights: str | Path | None = None) -> nn.Module:
    """Build backbone ``name`` in eval mode; load ``weights`` (a local file) unless none."""
    if name not in BACKBONES:
        raise MoveError(
            f"unknown backbone '{name}': choose one of {', '.join(available_backbones())}"
        )
    with torch.random.fork_rng(devices=[]):
        # Random init (weights none) is seeded, so every run of a pipeline gets the same features.
        torch.manual_seed(0)
        model = BACKBONES[name]()
    if weights is not None and str(weights).lower() != "none":
        load_checkpoint(model, weights)
    return model.eval()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint file and return its tensor state dict (unwrapping ``state_dict``/``model``)."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(
            f"weights file {path} not found: set extract.weights to a local checkpoint or 'none'"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise MoveError(
            f"weights file {path} is not a PyTorch checkpoint ({error.__class__.__name__}): "
            "give a torch.save'd state dict"
        ) from None
    for key in ("state_dict", "model", "module"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict) or not all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        raise MoveError(f"weights file {path} holds no state dict of tensors")
    return checkpoint


def remap_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt common key prefixes (``module.``, none vs. ``model.``) and drop classifier heads."""
    expected = set(model.state_dict())
    remapped = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key not in expected and f"model.{key}" in expected:
            key = f"model.{key}"
        remapped[key] = value
    heads = ("model.fc.", "fc.", "new_fc.", "model.head.")
    return {k: v for k, v in remapped.items() if k in expected or not k.startswith(heads)}


def load_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model`` strictly; a mismatch lists the missing/unexpected keys."""
    state = remap_keys(read_state_dict(path), model)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        k for k in set(state) & set(expected) if state[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong_shape:

        def show(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = [
            f"{label}: {show(keys)}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", wrong_shape),
            )
            if keys
        ]
        raise MoveError(
            f"weights file {path} does not fit the backbone ({'; '.join(parts)}): "
            "check extract.backbone matches the checkpoint"
        )
    model.load_state_dict(state, strict=True)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (used to record which weights/features made a result)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
