"""Checkpoint files into a backbone: reading a state dict, renaming its keys to the network's
(timm, torchvision and official TSM layouts), dropping classifier heads, and a strict load whose
mismatch lists the keys. Imports no registry, so a family file can use it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from move.errors import MoveError


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
    heads = ("fc.", "new_fc.", "head.", "classifier.")
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
    load_fitting_state(model, read_state_dict(path), path)


def load_fitting_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load the checkpoint ``state`` (read from ``path``) into ``model`` strictly, keys renamed
    and heads dropped (``remap_keys``); a mismatch lists the missing/unexpected keys."""
    state = remap_keys(state, model)
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
