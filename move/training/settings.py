"""Training settings: one frozen dataclass built from the config's ``train`` section, and Table 4's rows.

Defaults are the authors' code (VideoLT scripts); every deliberate difference from it is a named
setting whose docstring or schema description says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from move.config import check_batch_size, check_settings
from move.errors import MoveError
from move.extraction.features import open_feature_file
from move.training.model import ModelSettings
from move.training.registry import get_method

KEY_MASKS = ("code", "subset", "none")
DFS_SCOPES = ("per_sample", "first_sample")
GRAD_CLIP_WORDS = ("method", "none")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a training run (defaults: the authors' code).

    ``method`` names a registered method (``move.training.registry``); ``aggregators`` (+
    ``self_attentive`` / ``codebook_attentive``) the network; ``dfs`` / ``extrapolation`` /
    ``interpolation`` switch MOVE's parts (Table 4, ``ABLATION_ROWS``). ``dfs_scope``
    'first_sample' reproduces the authors' MiniKinetics script (DFS on the first video of each
    batch only), which produced Table 3. ``grad_clip`` 'method' clips the classifier's gradient
    norm as the authors' script of that method does (20 for the baselines, off for MOVE).
    """

    method: str = "move"
    aggregators: bool = True
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-4
    lr_milestones: tuple[int, ...] = (30, 60)
    lr_gamma: float = 0.1
    frames_train: int = 60
    frames_test: int = 150
    eval_every: int = 5
    seed: int = 0
    model: ModelSettings = field(default_factory=ModelSettings)
    dfs: bool = True
    dfs_key_mask: str = "code"
    dfs_scope: str = "per_sample"
    extrapolation: bool = True
    interpolation: bool = True
    lower_bound: float = 3.0
    extrapolation_alpha: float = 2.0
    interpolation_alpha: float = 1.0
    calib_bias: float = 0.5
    grad_clip: str | float = "method"
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    drw_epoch: int = 50
    cb_beta: float = 0.9999
    eql_gamma: float = 1.76e-3
    eql_tail_max: int = 100
    mixup_alpha: float = 1.0
    focal_gamma: float = 1.0
    framestack_share: float = 0.5
    framestack_warmup: int = 1
    device: str = "auto"
    num_workers: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> TrainSettings:
        """Build from a config section; model keys may sit at top level or under ``model``."""
        check_settings(values, "train", "train setting")  # the schema's ranges
        values, model_values = _split_model_keys(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            allowed = known | _model_keys()
            raise MoveError(
                f"unknown train setting(s) {', '.join(unknown)}: allowed are {', '.join(sorted(allowed))}"
            )
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        aggregators = bool(values.get("aggregators", True))
        model = ModelSettings(**model_values, aggregators=aggregators)
        settings = cls(**values, model=model)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations no run can use, with one line naming the setting."""
        method = get_method(self.method)
        for name, value, allowed in (
            ("dfs_key_mask", self.dfs_key_mask, KEY_MASKS),
            ("dfs_scope", self.dfs_scope, DFS_SCOPES),
        ):
            if value not in allowed:
                raise MoveError(
                    f"train setting {name} '{value}': choose one of {', '.join(allowed)}"
                )
        if isinstance(self.grad_clip, str) and self.grad_clip not in GRAD_CLIP_WORDS:
            raise MoveError(
                f"train setting grad_clip '{self.grad_clip}': use 'method', 'none' or a number > 0"
            )
        if method.needs_aggregators and not self.aggregators:
            raise MoveError(
                f"method '{self.method}' needs aggregators: set train.aggregators to true"
            )
        check_batch_size(self.batch_size, self.aggregators, "train setting 'batch_size'")
        if self.aggregators and not (self.model.self_attentive or self.model.codebook_attentive):
            raise MoveError(
                "train.aggregators is true but self_attentive and codebook_attentive are both "
                "false: enable one, or set aggregators to false"
            )

    def classifier_grad_clip(self) -> float | None:
        """The gradient-norm bound of this run: the method's (authors') value, none, or a number."""
        if self.grad_clip == "method":
            return get_method(self.method).grad_clip
        if self.grad_clip == "none":
            return None
        return float(self.grad_clip)

    def to_dict(self) -> dict:
        """Plain values (model settings nested under ``model``), as results and checkpoints store."""
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the settings that decide the result (not ``num_workers``), checked on resume."""
        values = self.to_dict()
        values.pop("num_workers")
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _model_keys() -> set[str]:
    """Settings of the network (``ModelSettings``) a config may give in its train section."""
    return {f.name for f in dataclasses.fields(ModelSettings)} - {"aggregators"}


def _split_model_keys(values: dict) -> tuple[dict, dict]:
    """(train keys, model keys) of a config section; model keys may also sit under ``model``."""
    values = dict(values)
    model_values = dict(values.pop("model", {}) or {})
    model_values.pop("aggregators", None)
    for key in list(values):
        if key in _model_keys():
            model_values[key] = values.pop(key)
    return values, model_values


# Table 4 of the paper: (a) no aggregator; (b) S-A; (c) C-A; (d) S-A + C-A; (e) + extrapolation
# (with DFS, which makes its two views); (f) + calibrated interpolation only; (g) full MOVE.
ABLATION_ROWS: dict[str, dict] = {
    "a": {"method": "plain", "aggregators": False},
    "b": {"method": "plain", "aggregators": True, "codebook_attentive": False},
    "c": {"method": "plain", "aggregators": True, "self_attentive": False},
    "d": {"method": "plain", "aggregators": True},
    "e": {"method": "move", "dfs": True, "extrapolation": True, "interpolation": False},
    "f": {"method": "move", "dfs": False, "extrapolation": False, "interpolation": True},
    "g": {"method": "move", "dfs": True, "extrapolation": True, "interpolation": True},
}


def with_feature_dim_of(features: str | Path, settings: TrainSettings) -> TrainSettings:
    """``settings`` with the model's input size set to the feature file's ``feature_dim``.

    The file is the truth (2048 for our backbones, other sizes for synthetic or converted
    features), so configs need not repeat it.
    """
    with open_feature_file(features) as handle:
        dim = int(handle.attrs.get("feature_dim", settings.model.feature_dim))
    if dim == settings.model.feature_dim:
        return settings
    return dataclasses.replace(settings, model=dataclasses.replace(settings.model, feature_dim=dim))
