"""Any timm image model as ``timm:<name>`` (``timm:resnet18``, ``timm:vit_base_patch16_clip_224.openai``,
``timm:vit_small_patch14_dinov2.lvd142m``, ``timm:convnext_tiny``): one feature per frame, the
model's ``num_features``, with the input size, resize (input size / crop_pct) and mean/std of
its timm ``pretrained_cfg``. Its named weights ``timm`` are timm's pretrained weights of that
name (the tag after the dot picks them), downloaded once from the URL in the config or the
Hugging Face hub into torch.hub's cache, the sha256 of the first download recorded, and
loaded through timm (its checkpoint filter, so CLIP and DINOv2 checkpoints load)."""

from __future__ import annotations

import math

from move.errors import MoveError
from move.extraction.registry import Backbone, BackboneFamily, NamedWeights, register_family

HUGGING_FACE = "https://huggingface.co"


def pretrained_config(model: str):
    """timm's pretrained config of ``model`` (``name`` or ``name.tag``); unknown -> MoveError."""
    import timm

    architecture = model.split(".", 1)[0]
    config = timm.get_pretrained_cfg(model) if timm.is_model(architecture) else None
    if config is None:
        raise MoveError(
            f"unknown backbone 'timm:{model}': not a timm model (list them with "
            "python -c 'import timm; print(timm.list_models(pretrained=True))')"
        )
    return config


def weights_url(config) -> str:
    """Where timm publishes the weights: its URL, else the file on the Hugging Face hub."""
    if config.url:
        return config.url
    if config.hf_hub_id:
        file = config.hf_hub_filename or "model.safetensors"
        return f"{HUGGING_FACE}/{config.hf_hub_id}/resolve/main/{file}"
    return ""


def describe(model: str) -> Backbone:
    """The entry of ``timm:<model>`` from timm's pretrained config."""
    config = pretrained_config(model)
    size = int(config.input_size[-1])
    url = weights_url(config)
    suffix = "." + url.rsplit(".", 1)[-1] if "." in url.rsplit("/", 1)[-1] else ".pth"
    weights = {
        "timm": NamedWeights(
            url,
            trained_on=f"timm tag '{config.tag or 'default'}'",
            file_name=f"timm-{model}{suffix}",
        )
    }
    return Backbone(
        name=f"timm:{model}",
        build=lambda: build(model),
        feature_dim=None,
        input_size=size,
        resize=int(math.floor(size / (config.crop_pct or 0.875))),
        mean=tuple(config.mean),
        std=tuple(config.std),
        weights=weights if url else {},
        summary=f"timm's {model}, one feature per frame.",
        load_weights=lambda network, path: load_timm_weights(network, model, path),
    )


def build(model: str):
    """timm's ``model`` without its classifier, random init (``TimmBackbone``)."""
    from move.extraction.backbones.networks import TimmBackbone

    return TimmBackbone(model)


def load_timm_weights(network, model: str, path) -> None:
    """Load a timm checkpoint file (``.pth`` or ``.safetensors``) as timm reads it: its model's
    ``checkpoint_filter_fn`` (CLIP, DINOv2 and other converted checkpoints), classifier dropped,
    then strictly (``load_fitting_state``): a checkpoint of another model is refused."""
    import sys

    from move.extraction.backbones.checkpoints import load_fitting_state, read_state_dict

    with open(path, "rb") as file:
        safetensors = file.read(9)[8:] == b"{"  # a JSON header after its 8-byte length
    if safetensors:  # by content: a download is checked before it has its name
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as error:
            raise MoveError(
                f"weights file {path} is not a readable safetensors file "
                f"({type(error).__name__}): download it again"
            ) from None
    else:
        state = read_state_dict(path)
    filter_fn = getattr(sys.modules[type(network.model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        try:
            state = filter_fn(state, network.model)
        except Exception as error:
            raise MoveError(
                f"weights file {path} does not fit the backbone timm:{model} (timm's checkpoint "
                f"filter: {type(error).__name__}): check extract.backbone matches the checkpoint"
            ) from None
    classifiers = pretrained_config(model).classifier or ()
    heads = tuple(f"{c}." for c in ([classifiers] if isinstance(classifiers, str) else classifiers))
    state = {k: v for k, v in state.items() if not k.startswith(heads)}
    try:
        load_fitting_state(network, state, path)
    except MoveError as error:
        raise MoveError(str(error).replace("the backbone", f"the backbone timm:{model}")) from None


register_family(
    BackboneFamily(
        prefix="timm",
        describe=describe,
        summary="any timm image model by name, with its own input size and normalisation",
        example="timm:vit_base_patch16_clip_224.openai",
    )
)
