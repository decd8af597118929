"""Stage 4, training and evaluation: MOVE and the baselines as registered methods, one loop.

Modules: ``settings`` (TrainSettings, Table 4's rows), ``registry`` (the methods, their names),
``methods`` (the built-in ones), ``loading`` (split, loaders), ``loop`` (train), ``evaluation``,
``artefacts`` (checkpoint, progress, results JSON), ``commands`` (what ``move train`` / ``move
evaluate`` run). Reads feature files (``move.extraction.features``) and split CSVs (``move.datasets.splits``).

The names below are imported on first use, so that ``move.training.registry`` (the workflow's
config validation, the CLI help) loads without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ABLATION_ROWS": "settings",
    "TrainSettings": "settings",
    "Method": "registry",
    "get_method": "registry",
    "method_names": "registry",
    "register_method": "registry",
    "variant_names": "registry",
    "variant_settings": "registry",
    "RunInfo": "artefacts",
    "load_checkpoint": "artefacts",
    "read_results": "artefacts",
    "summary": "artefacts",
    "evaluate_checkpoint": "evaluation",
    "train": "loop",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'move.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"move.training.{_EXPORTS[name]}"), name)
