"""An example backbone in one file: what adding a backbone takes.

A tiny convolutional network (two convolutions, global average pooling: 16 features per frame),
fed 32 x 32 crops of frames resized to 40, normalised by 0.5 / 0.5. Saved as
``move/extraction/backbones/<name>.py`` and imported by that package's ``__init__`` it would be
built in; here the tests register it (``register_backbone(TINY_CNN)``), and
``tests/test_backbone_registry.py`` installs it as an out-of-tree plugin through the
``move.backbones`` entry point.
"""

from __future__ import annotations

from move.extraction.registry import Backbone


def build_tiny_cnn():
    """The network: ``forward_features`` maps frames ``[N, 3, H, W]`` to ``[N, 16]``."""
    import torch
    from torch import nn

    class TinyCnn(nn.Module):
        """Two 3x3 convolutions and global average pooling: 16 features per frame."""

        feature_dim = 16

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2)
            )

        def forward_features(self, frames: torch.Tensor) -> torch.Tensor:
            return self.body(frames).mean(dim=(2, 3))

        forward = forward_features

    return TinyCnn()


TINY_CNN = Backbone(
    name="tiny_cnn",
    build=build_tiny_cnn,
    feature_dim=16,
    input_size=32,
    resize=40,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    summary="A tiny CNN of the tests (the out-of-tree example backbone), one feature per frame.",
)
