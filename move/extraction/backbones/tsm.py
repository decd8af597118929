"""TSM (Lin et al. 2019): ResNet-50 with a residual-branch temporal shift, 8 segments per clip,
one 2048-d feature per frame; the official Kinetics-400 checkpoint (so on a Kinetics subset the
leak guard refuses it unless allowed)."""

from __future__ import annotations

from move.extraction.backbones.resnets import IMAGENET_MEAN, IMAGENET_STD
from move.extraction.registry import KINETICS_400, Backbone, NamedWeights, register_backbone

TSM_KINETICS = (
    "https://hanlab.mit.edu/projects/tsm/models/"
    "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
)


def build_tsm():
    """ResNet-50 with TSM's shift, 8 segments, 1/8 of the channels shifted each way."""
    from move.extraction.backbones.networks import TSMBackbone

    return TSMBackbone(n_segment=8, shift_div=8)


register_backbone(
    Backbone(
        name="tsm_resnet50",
        build=build_tsm,
        feature_dim=2048,
        input_size=224,
        resize=256,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        frames_per_pass=8,
        weights={"kinetics": NamedWeights(TSM_KINETICS, KINETICS_400)},
        summary="TSM ResNet-50 (8 segments, blockres shift), one feature per frame; the "
        "official Kinetics-400 checkpoint.",
    )
)
