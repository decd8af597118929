"""torchvision's video models (R(2+1)D-18, ResNet3D-18, S3D, MViTv2-S, Swin3D-T): 3D networks fed clips of
16 consecutive sampled frames, one feature per clip (the pooled input of the classifier), with
torchvision's Kinetics-400 weights and their test-time preprocessing (resize, crop, mean, std of
each model's ``weights.transforms()``). Kinetics-trained: on a Kinetics subset the leak guard
refuses them unless allowed."""

from __future__ import annotations

from move.extraction.registry import KINETICS_400, Backbone, NamedWeights, register_backbone

TORCHVISION_MODELS = "https://download.pytorch.org/models"
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
CLIP_FRAMES = 16


def video_model(name: str, feature_dim: int, head: str):
    """Builder of torchvision's ``name`` (random init) with its classifier ``head`` removed,
    fed clips of ``CLIP_FRAMES`` frames (``ClipBackbone``)."""

    def build():
        import torchvision
        from torch import nn

        from move.extraction.backbones.networks import ClipBackbone

        model = torchvision.models.get_model(name, weights=None)
        setattr(model, head, nn.Identity())
        return ClipBackbone(model, feature_dim, CLIP_FRAMES)

    return build


# name, classifier attribute, feature size, resize, crop, mean, std, published file, summary
MODELS = (
    ("r2plus1d_18", "fc", 512, 128, 112, KINETICS_MEAN, KINETICS_STD, "r2plus1d_18-91a641e6.pth",
     "R(2+1)D-18"),
    ("r3d_18", "fc", 512, 128, 112, KINETICS_MEAN, KINETICS_STD, "r3d_18-b3b3357e.pth",
     "ResNet3D-18"),
    ("s3d", "classifier", 1024, 256, 224, KINETICS_MEAN, KINETICS_STD, "s3d-d76dad2f.pth", "S3D"),
    ("mvit_v2_s", "head", 768, 256, 224, (0.45, 0.45, 0.45), (0.225, 0.225, 0.225),
     "mvit_v2_s-ae3be167.pth", "MViTv2-S"),
    ("swin3d_t", "head", 768, 256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
     "swin3d_t-7615ae03.pth", "Swin3D-T"),
)  # fmt: skip

for _name, _head, _dim, _resize, _crop, _mean, _std, _file, _display in MODELS:
    register_backbone(
        Backbone(
            name=_name,
            build=video_model(_name, _dim, _head),
            feature_dim=_dim,
            input_size=_crop,
            resize=_resize,
            mean=_mean,
            std=_std,
            frames_per_pass=CLIP_FRAMES,
            per_clip=True,
            weights={
                "kinetics": NamedWeights(
                    f"{TORCHVISION_MODELS}/{_file}", KINETICS_400, _file.split("-")[1][:8]
                )
            },
            summary=f"{_display} (torchvision's), one feature per clip of {CLIP_FRAMES} frames; "
            "torchvision's Kinetics-400 weights.",
        )
    )
