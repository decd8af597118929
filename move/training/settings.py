"""Training settings: the network's (``ModelSettings``) and the run's (``TrainSettings``), and
Table 4's rows.

Defaults are the authors' code (VideoLT scripts); every deliberate difference from it is a named
setting whose docstring or schema description says so. A method's own settings are its
dataclass in ``move.training.methods``; ``TrainSettings`` carries the chosen method's as a plain
section (``method_settings``), filled in when the run resolves its method. Plain data: no torch,
no registry; values are checked against the schema's ranges (``move.config``, the ground floor).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from move.config import check_settings
from move.errors import MoveError
from move.validation import check_batch_size

# Training precision (``move.training.precision``): float32 as the authors; tf32 lets CUDA matrix
# products round their inputs to TF32 (no effect on the CPU); bf16 runs the forward pass under
# bfloat16 autocast. It decides the numbers, so it is in the fingerprint (but float32, the
# default, is left out of it: a float32 run keeps the fingerprint it had before the setting).
PRECISIONS = ("float32", "tf32", "bf16")
DEFAULT_PRECISION = "float32"
# Settings that do not decide a run's numbers: a run resumed or a cell over seeds may differ in them.
# ``compile`` (torch.compile) runs the same maths, fused: steps agree with eager within 1e-4.
NOT_IN_FINGERPRINT = (
    "num_workers",
    "resume_every_minutes",
    "checkpoint_dtype",
    "features_on_device",
    "compile",
)


@dataclass(frozen=True)
class ModelSettings:
    """Architecture hyperparameters (defaults: the authors' code)."""

    feature_dim: int = 2048
    heads: int = 4
    d_k: int = 512
    d_v: int = 512
    attention_dropout: float = 0.1
    clusters: int = 64
    codebook: str = "netvlagd"  # or "netvlad" (the paper's Eq. 2-3 with centres)
    codebook_dim: int = 1024
    hidden_dim: int = 2048
    classifier_dropout: float = 0.5
    aggregators: bool = True  # False: per-frame classifier, logits averaged over frames
    self_attentive: bool = True  # PSA (S-A in Table 4)
    codebook_attentive: bool = True  # codebook aggregator (C-A in Table 4)
    detach_codebook_views: bool = True  # the code's x.detach() before DFS in the codebook


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a training run (defaults: the authors' code).

    ``method`` names a registered method (``move.training.methods``) and ``method_settings`` its
    own settings (the config's ``train.<method>`` section); ``aggregators`` (+
    ``self_attentive`` / ``codebook_attentive``) the network. ``grad_clip`` 'method' clips the
    classifier's gradient norm as the authors' script of that method does (20 for the baselines,
    off for MOVE).
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
    method_settings: dict = field(default_factory=dict)
    grad_clip: str | float = "method"
    device: str = "auto"
    num_workers: int = 0
    # How the run is kept, not what it computes (left out of ``fingerprint``): the resume state
    # (weights + Adam moments, 1.9 GB at full size) is written when this many minutes have passed
    # since the last one (0: after every epoch), and the kept checkpoint's floating-point
    # tensors are stored in this dtype (float16 halves it; evaluation agrees within 1e-3).
    resume_every_minutes: float = 10.0
    checkpoint_dtype: str = "float16"
    # Keep a split's features on a CUDA device when they take at most this share of its memory
    # (frames and batches then drawn there, the same values as the worker loader's); 0: never.
    features_on_device: float = 0.5
    # Speed (``move.training.precision``): the precision of the training steps (evaluation stays
    # float32) and whether the network's parts run compiled (torch.compile, inductor).
    precision: str = DEFAULT_PRECISION
    compile: bool = False

    @classmethod
    def from_dict(cls, values: dict) -> TrainSettings:
        """Build from a config section; model keys may sit at top level or under ``model``; the
        chosen method's settings under its name (other methods' sections are left out)."""
        values, model_values = _split_model_keys(values)
        method = values.get("method", cls.method)
        method_settings = values.pop(method, None) or values.pop("method_settings", None) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k, v in values.items() if k not in known and not isinstance(v, dict))
        if unknown:
            allowed = known | _model_keys()
            raise MoveError(
                f"unknown train setting(s) {', '.join(unknown)}: allowed are "
                f"{', '.join(sorted(allowed))} and a section per method"
            )
        values = {k: v for k, v in values.items() if k in known}
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        aggregators = bool(values.get("aggregators", cls.aggregators))
        model = ModelSettings(**model_values, aggregators=aggregators)
        settings = cls(**values, model=model, method_settings=dict(method_settings))
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values the schema refuses (its ranges, one place: ``move.config.check_settings``)
        and combinations no run can use, with one line naming the setting."""
        skipped = ("method", self.method, "model")  # the method: its registry checks it
        values = {k: v for k, v in self.to_dict().items() if k not in skipped}
        check_settings(values, "train", "train setting")
        check_batch_size(self.batch_size, self.aggregators, "train setting 'batch_size'")
        if self.aggregators and not (self.model.self_attentive or self.model.codebook_attentive):
            raise MoveError(
                "train.aggregators is true but self_attentive and codebook_attentive are both "
                "false: enable one, or set aggregators to false"
            )

    def classifier_grad_clip(self, method_default: float | None) -> float | None:
        """The gradient-norm bound of this run: the method's (authors') value, none, or a number."""
        if self.grad_clip == "method":
            return method_default
        if self.grad_clip == "none":
            return None
        return float(self.grad_clip)

    def to_dict(self) -> dict:
        """Plain values as results and checkpoints store them: the network's under ``model``,
        the method's under its name (the config's shape)."""
        values = dataclasses.asdict(self)
        values[self.method] = values.pop("method_settings")
        return values

    def fingerprint(self) -> str:
        """Hash of the settings that decide the result (not ``NOT_IN_FINGERPRINT``; ``precision``
        only when not float32), checked on resume."""
        values = self.to_dict()
        for key in NOT_IN_FINGERPRINT:
            values.pop(key)
        if values["precision"] == DEFAULT_PRECISION:  # as before the setting existed
            values.pop("precision")
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
    "e": {"method": "move", "move": {"dfs": True, "extrapolation": True, "interpolation": False}},
    "f": {"method": "move", "move": {"dfs": False, "extrapolation": False, "interpolation": True}},
    "g": {"method": "move", "move": {"dfs": True, "extrapolation": True, "interpolation": True}},
}
