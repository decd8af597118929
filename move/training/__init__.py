"""Stage 4, training and evaluation: MOVE and the baselines as registered methods, one loop.

Modules: ``settings`` (TrainSettings, Table 4's rows), ``registry`` (the methods, their names),
``methods`` (the built-in ones), ``loading`` (split, loaders), ``loop`` (train), ``evaluation``,
``artefacts`` (checkpoint, progress, results JSON), ``commands`` (what ``move train`` / ``move
evaluate`` run). Reads feature files (``move.features``) and split CSVs (``move.splits``).
"""

from move.training.artefacts import RunInfo, load_checkpoint, read_results, summary
from move.training.evaluation import evaluate_checkpoint
from move.training.loop import train
from move.training.registry import (
    Method,
    get_method,
    method_names,
    register_method,
    variant_names,
    variant_settings,
)
from move.training.settings import ABLATION_ROWS, TrainSettings

__all__ = [
    "ABLATION_ROWS",
    "Method",
    "RunInfo",
    "TrainSettings",
    "evaluate_checkpoint",
    "get_method",
    "load_checkpoint",
    "method_names",
    "read_results",
    "register_method",
    "summary",
    "train",
    "variant_names",
    "variant_settings",
]
