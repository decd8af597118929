"""How extraction samples, preprocesses and runs: ``ExtractSettings``, plain data (no torch), so
that the CLI's options and planning read its defaults without loading a backbone."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from move.config import check_settings
from move.extraction.backbones import backbones_help, get_backbone


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class ExtractSettings:
    """How frames are sampled and preprocessed, and how the backbone runs. The defaults are the
    workflow's (the schema's ``$defs.extract``, a test keeps them equal): 150 frames, the
    backbone's named weights, its own input size."""

    backbone: str = field(default="resnet50", metadata=_help(backbones_help()))
    weights: str | None = field(
        default=None,
        metadata=_help(
            "a named weight of the backbone (imagenet: resnet50/101; kinetics: tsm_resnet50 and "
            "the video models; timm: timm:<model>), a URL or a local checkpoint (downloads are "
            "cached in torch.hub's folder and verified), or 'none' (random init); None: the "
            "backbone's named weights, as the workflow"
        ),
    )
    frames: int = field(default=150, metadata=_help("frames T per video (the authors: 150)"))
    resize: int | None = field(
        default=None, metadata=_help("shorter side before cropping (None: the backbone's)")
    )
    crop: int | None = field(
        default=None, metadata=_help("centre crop size (None: the backbone's input size)")
    )
    batch_size: int = field(default=64, metadata=_help("frames per forward pass"))
    num_workers: int = field(
        default=0,
        metadata=_help(
            "decoding worker processes at most: as many are used as keep the backbone busy, "
            "from one worker's and the backbone's rates measured at the start and logged "
            "(the CLI's default: one per CPU core, less one)"
        ),
    )
    device: str = field(default="auto", metadata=_help("auto, cpu or cuda[:N]"))
    dtype: str = field(
        default="float16", metadata=_help("stored dtype") | {"choices": ["float16", "float32"]}
    )
    min_decoded_share: float = field(
        default=0.5,
        metadata=_help(
            "log a video as failed when it decodes fewer than this share of the frames its "
            "container states (a broken index; 0: off)"
        ),
    )

    def __post_init__(self) -> None:
        values = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        check_settings(values, "extract", "extract setting")  # schema ranges

    def for_backbone(self) -> ExtractSettings:
        """These settings with unset weights, resize or crop taken from the backbone's entry (its
        named weights, its input size, and the shorter side its preprocessing resizes to)."""
        entry = get_backbone(self.backbone)
        return dataclasses.replace(
            self,
            weights=entry.default_weights() if self.weights is None else self.weights,
            resize=entry.resize if self.resize is None else self.resize,
            crop=entry.input_size if self.crop is None else self.crop,
        )
