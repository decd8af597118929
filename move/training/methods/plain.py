"""Baseline: BCE on the plain forward pass (the authors' ``base_main.py`` / ``base_main_Agg.py``)."""

from move.training.methods.common import BASELINE
from move.training.registry import Method, register_method

register_method(Method("plain", "Baseline", **BASELINE, summary="BCE"))
