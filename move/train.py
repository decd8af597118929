"""The training stage's former module path, kept for ``benchmarks/train.py``: the code is ``move.training``."""

from move.training.loading import load_problem, make_loaders
from move.training.loop import train
from move.training.settings import TrainSettings

__all__ = ["TrainSettings", "load_problem", "make_loaders", "train"]
