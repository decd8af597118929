"""The ImageNet ResNets the paper extracts with (``resnet50``, ``resnet101``): timm's ResNets
without their classifier, one 2048-d feature per frame, loading torchvision's ImageNet weights
(what the authors' extraction loaded), fed 224 x 224 centre crops of frames resized to 256 and
normalised by ImageNet's mean and std."""

from __future__ import annotations

from move.extraction.registry import IMAGENET_1K, Backbone, NamedWeights, register_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_MODELS = "https://download.pytorch.org/models"


def timm_resnet(name: str):
    """Builder of timm's ``name`` without its classifier (``TimmBackbone``)."""

    def build():
        from move.extraction.backbones.networks import TimmBackbone

        return TimmBackbone(name)

    return build


for _name, _file, _sha in (
    ("resnet50", "resnet50-19c8e357.pth", "19c8e357"),
    ("resnet101", "resnet101-5d3b4d8f.pth", "5d3b4d8f"),
):
    register_backbone(
        Backbone(
            name=_name,
            build=timm_resnet(_name),
            feature_dim=2048,
            input_size=224,
            resize=256,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            weights={"imagenet": NamedWeights(f"{TORCHVISION_MODELS}/{_file}", IMAGENET_1K, _sha)},
            summary=f"{_name.replace('resnet', 'ResNet-')} (timm's), one feature per frame; "
            "torchvision's ImageNet weights, as the authors' extraction.",
        )
    )
