"""Stage 2, backbones: frame feature extractors created by name, with their weights.

``create_backbone(name, weights)`` is the one door in (as timm's ``create_model``). Every
backbone maps frames ``[N, 3, H, W]`` to penultimate features ``[N, 2048]`` through
``forward_features``. Weights are a name (``imagenet``, ``kinetics``) or URL, downloaded once and
verified by ``move.extraction.weights``, a local checkpoint file, or ``none`` (seeded random init).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from move.errors import MoveError
from move.extraction.weights import Weights, resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def temporal_shift(x: torch.Tensor, n_segment: int, shift_div: int = 8) -> torch.Tensor:
    """Shift 1/shift_div of the channels one segment back and 1/shift_div one segment forward.

    ``x`` is ``[clips * n_segment, C, H, W]`` (segments of a clip consecutive). Channels
    ``[0, C/div)`` take the *next* segment's values, ``[C/div, 2C/div)`` the *previous*
    segment's; the rest are unchanged; vacated ends are zero (TSM, Lin et al. 2019).
    """
    nt, channels, height, width = x.shape
    x = x.view(nt // n_segment, n_segment, channels, height, width)
    fold = channels // shift_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, channels, height, width)


class TemporalShift(nn.Module):
    """Wraps a conv: temporal shift, then the conv (as ``.net``, the official TSM key name)."""

    def __init__(self, net: nn.Module, n_segment: int, shift_div: int):
        super().__init__()
        self.net, self.n_segment, self.shift_div = net, n_segment, shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.n_segment, self.shift_div))


class TSMBackbone(nn.Module):
    """ResNet-50 with a residual-branch ("blockres") temporal shift before each block's conv1.

    Takes frames of consecutive clips of ``n_segment`` segments and gives one feature per
    segment. A frame count that is not a multiple of ``n_segment`` is padded by repeating the
    last frame (outputs for the padding are dropped), so any T works; T = ``n_segment``
    reproduces the official 8-segment test setting exactly.
    """

    def __init__(self, n_segment: int = 8, shift_div: int = 8):
        super().__init__()
        import timm

        self.n_segment, self.shift_div = n_segment, shift_div
        self.base_model = timm.create_model("resnet50", pretrained=False, num_classes=0)
        self.feature_dim = self.base_model.num_features
        for name in ("layer1", "layer2", "layer3", "layer4"):
            for block in getattr(self.base_model, name):
                block.conv1 = TemporalShift(block.conv1, n_segment, shift_div)

    def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[N, 3, H, W]`` (clips of ``n_segment`` in order) -> ``[N, feature_dim]``."""
        n = frames.shape[0]
        pad = -n % self.n_segment
        if pad:
            frames = torch.cat([frames, frames[-1:].expand(pad, *frames.shape[1:])])
        return self.base_model(frames)[:n]

    forward = forward_features


BACKBONES = {
    "resnet50": lambda: TimmBackbone("resnet50"),
    "resnet101": lambda: TimmBackbone("resnet101"),
    "tsm_resnet50": lambda: TSMBackbone(n_segment=8, shift_div=8),
}


def available_backbones() -> list[str]:
    """Names ``create_backbone`` accepts."""
    return sorted(BACKBONES)


def create_backbone(name: str, weights: Weights | str | Path | None = None) -> nn.Module:
    """Build backbone ``name`` in eval mode with ``weights`` (name, URL, file, resolved, or none)."""
    if name not in BACKBONES:
        raise MoveError(
            f"unknown backbone '{name}': choose one of {', '.join(available_backbones())}"
        )
    if not isinstance(weights, Weights):
        weights = verified_weights(name, weights)  # before building: a bad name fails fast
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # 'none' = random init, but the same one every run (resume, shards)
        model = BACKBONES[name]()
    if weights.path is not None:
        load_backbone_weights(model, weights.path)
    return model.eval()


def checkpoint_check(backbone: str) -> Callable[[Path], None]:
    """Content check of a weights file for ``backbone``: it loads with ``weights_only=True`` and
    its keys and shapes fit. Raises ``MoveError`` saying what is wrong, without the file's name
    (``is not a PyTorch checkpoint (…)``, ``does not fit the backbone (missing: …)``)."""

    def check(path: Path) -> None:
        try:
            load_backbone_weights(create_backbone(backbone, None), path)
        except MoveError as error:
            raise MoveError(str(error).replace(f"weights file {path} ", "")) from None

    return check


def verified_weights(backbone: str, weights: str | Path | None) -> Weights:
    """``none``, a name, a URL or a local file -> the checkpoint file and its sha256; a named or
    URL checkpoint downloaded (or found cached) is verified whole, by hash and by content."""
    return resolve_weights(backbone, weights, checkpoint_check(backbone))


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


def canonical_key(key: str) -> str:
    """A parameter name without wrappers: ``module.``/``model.``/``base_model.`` and TSM's ``.net``."""
    for prefix in ("module.", "base_model.", "model."):
        key = key.removeprefix(prefix)
    return key.replace(".conv1.net.", ".conv1.")


def remap_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename checkpoint keys to ``model``'s and drop classifier heads (``fc``, ``new_fc``).

    So timm, torchvision and official TSM (``module.base_model.…conv1.net.…``) checkpoints all
    load; keys that match nothing are kept so that the mismatch is reported.
    """
    by_canonical = {canonical_key(k): k for k in model.state_dict()}
    heads = ("fc.", "new_fc.", "head.")
    remapped = {}
    for key, value in state.items():
        canonical = canonical_key(key)
        if canonical in by_canonical:
            remapped[by_canonical[canonical]] = value
        elif not canonical.startswith(heads):
            remapped[key] = value
    return remapped


def load_backbone_weights(model: nn.Module, path: str | Path) -> None:
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
