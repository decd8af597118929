"""The networks the backbone families build: a timm image model without its classifier
(``TimmBackbone``), ResNet-50 with TSM's temporal shift (``TSMBackbone``) and a 3D video model
fed clips (``ClipBackbone``). Each maps normalised frames ``[N, 3, H, W]`` to ``[N, feature_dim]``
through ``forward_features``; ``n_segment`` (frames one pass takes together) and ``per_clip``
tell extraction how to batch them.
"""

from __future__ import annotations

import torch
from torch import nn


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


class ClipBackbone(nn.Module):
    """A video model fed clips of ``clip_frames`` consecutive frames: one feature per clip,
    repeated for each of its frames (extraction keeps one row per clip). A frame count that is
    not a multiple of ``clip_frames`` is padded by repeating the last frame."""

    per_clip = True

    def __init__(self, model: nn.Module, feature_dim: int, clip_frames: int):
        super().__init__()
        self.model, self.feature_dim, self.n_segment = model, feature_dim, clip_frames

    def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[N, 3, H, W]`` (clips in order) -> ``[N, feature_dim]``, one value per clip."""
        n, t = frames.shape[0], self.n_segment
        pad = -n % t
        if pad:
            frames = torch.cat([frames, frames[-1:].expand(pad, *frames.shape[1:])])
        clips = frames.view(-1, t, *frames.shape[1:]).transpose(1, 2)  # [B, 3, T, H, W]
        return self.model(clips).repeat_interleave(t, dim=0)[:n]

    forward = forward_features
