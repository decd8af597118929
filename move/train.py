"""Stage 4, training and evaluation: one trainer for MOVE and the baselines.

Reads a feature file (``move.features``) and a split CSV (``move.splits``); writes the results
JSON (final- and best-epoch metrics, settings, seed, git commit, input hashes), a per-class CSV
and a checkpoint that ``evaluate_checkpoint`` reloads. Training resumes from
``<checkpoint>.partial``, written after every epoch, when its settings match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from move.config import check_batch_size, check_settings
from move.data import FeatureDataset, check_fits_checkpoint, feature_loader, parse_class_indices
from move.device import resolve_device
from move.errors import MoveError
from move.features import open_feature_file, video_ids
from move.files import atomic_output, file_sha256, write_text_atomic
from move.losses import (
    bce_loss,
    class_balanced_indices,
    class_balanced_weights,
    drw_weights,
    eql_loss,
    framestack,
    ldam_loss,
    ldam_margins,
    mixup,
)
from move.metrics import evaluate, per_class_average_precision
from move.model import ModelSettings, VideoClassifier
from move.splits import class_group, read_split, write_csv_atomic
from move.vicinity import (
    calibrated_interpolation,
    dfs_lower_bound,
    dynamic_extrapolation,
    dynamic_frame_mask,
    sample_extrapolation_weight,
    sample_interpolation_weight,
    tail_weighted_criterion,
)

METHODS = ("plain", "ldam_drw", "eql", "cbs", "cb_loss", "mixup", "framestack", "move")
KEY_MASKS = ("code", "subset", "none")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a training run (defaults: the authors' MiniKinetics setting).

    ``method`` picks the objective (``METHODS``); ``aggregators`` (+ ``self_attentive`` /
    ``codebook_attentive``) the network; ``dfs`` / ``extrapolation`` / ``interpolation`` switch
    MOVE's parts, so every row of Table 4 is a choice of these switches (``ABLATION_ROWS``).
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
    extrapolation: bool = True
    interpolation: bool = True
    lower_bound: float = 3.0
    extrapolation_alpha: float = 2.0
    interpolation_alpha: float = 1.0
    calib_bias: float = 0.5
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    drw_epoch: int = 50
    cb_beta: float = 0.9999
    eql_gamma: float = 1.76e-3
    mixup_alpha: float = 1.0
    device: str = "auto"
    num_workers: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> TrainSettings:
        """Build from a config section; model keys may sit at top level or under ``model``."""
        check_settings(values, "train", "train setting")  # the schema's ranges
        values = dict(values)
        model_keys = {f.name for f in dataclasses.fields(ModelSettings)} - {"aggregators"}
        model_values = dict(values.pop("model", {}) or {})
        model_values.pop("aggregators", None)
        for key in list(values):
            if key in model_keys:
                model_values[key] = values.pop(key)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MoveError(
                f"unknown train setting(s) {', '.join(unknown)}: allowed are {', '.join(sorted(known | model_keys))}"
            )
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        aggregators = bool(values.get("aggregators", True))
        model = ModelSettings(**model_values, aggregators=aggregators)
        settings = cls(**values, model=model)
        if settings.method not in METHODS:
            raise MoveError(
                f"unknown method '{settings.method}': choose one of {', '.join(METHODS)}"
            )
        if settings.dfs_key_mask not in KEY_MASKS:
            raise MoveError(
                f"train setting dfs_key_mask '{settings.dfs_key_mask}': choose one of {', '.join(KEY_MASKS)}"
            )
        if settings.method == "move" and not aggregators:
            raise MoveError("method 'move' needs aggregators: set train.aggregators to true")
        check_batch_size(settings.batch_size, aggregators, "train setting 'batch_size'")
        if aggregators and not (model.self_attentive or model.codebook_attentive):
            raise MoveError(
                "train.aggregators is true but self_attentive and codebook_attentive are both "
                "false: enable one, or set aggregators to false"
            )
        return settings

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the settings that decide the result (not ``num_workers``), checked on resume."""
        values = self.to_dict()
        values.pop("num_workers")
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


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


@dataclass
class Problem:
    """What training needs to know about the data: classes, their counts and groups."""

    n_classes: int
    labels: list[str]
    train_counts: np.ndarray
    groups: np.ndarray
    train: pd.DataFrame
    test: pd.DataFrame


def load_problem(
    split_path: str | Path, features_path: str | Path, head_min: int, tail_max: int
) -> Problem:
    """Read the split, check every listed video has features, and count classes."""
    split = read_split(split_path)
    with open_feature_file(features_path) as handle:
        present = set(video_ids(handle))
    missing = sorted(set(split.video_id) - present)
    if missing:
        raise MoveError(
            f"{len(missing)} video(s) of split {split_path} are not in {features_path} "
            f"(e.g. {missing[0]}): regenerate the split from this feature file"
        )
    class_lists = [parse_class_indices(v) for v in split.class_index]
    n_classes = max(max(c) for c in class_lists) + 1
    labels = [""] * n_classes
    for classes, label in zip(class_lists, split.label, strict=True):
        for c, name in zip(classes, str(label).split(";"), strict=False):
            labels[c] = name
    train = split[split.split == "train"].reset_index(drop=True)
    test = split[split.split == "test"].reset_index(drop=True)
    if train.empty or test.empty:
        raise MoveError(f"split {split_path} needs both train and test videos")
    counts = np.zeros(n_classes, dtype=np.int64)
    for value in train.class_index:
        counts[parse_class_indices(value)] += 1
    groups = np.array([class_group(int(n), head_min, tail_max) for n in counts])
    return Problem(n_classes, labels, counts, groups, train, test)


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


@dataclass
class LossContext:
    """What the objectives need besides a batch: class statistics, the epoch, the RNG."""

    settings: TrainSettings
    tau: torch.Tensor
    counts: np.ndarray
    tail_classes: torch.Tensor
    epoch: int
    generator: torch.Generator
    class_ap: torch.Tensor


def move_loss(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """MOVE's training objective (Eq. 5-6 over the vicinity of Eq. 8-12), BCE on the mixed labels.

    As the authors' VideoLT code: per sample, DFS (Eq. 8-9) draws two frame subsets whose means are
    PSA's two pooled queries, a third subset is *removed* from PSA's keys (``dfs_key_mask='code'``;
    'subset' keeps it instead, 'none' masks nothing), and two more subsets zero the other frames of
    the codebook aggregator's input -> prototypes u, v (Eq. 10). Dynamic extrapolation (Eq. 11,
    one omega per batch) gives z_hat; calibrated interpolation (Eq. 12, one lambda per batch) mixes
    z_hat with a shuffled copy of the batch. Each part can be switched off (Table 4's rows).
    (The MiniKinetics script of the code applies DFS to the first sample of each batch only, a
    defect not reproduced here.)
    """
    s, g = ctx.settings, ctx.generator
    frames = x.shape[1]
    if s.dfs:
        low = dfs_lower_bound(ctx.tau, y, frames, s.lower_bound)
        query_masks = torch.stack([dynamic_frame_mask(low, frames, g) for _ in range(2)], 1)
        key_mask = None
        if s.dfs_key_mask != "none":
            key_mask = dynamic_frame_mask(low, frames, g)
            if s.dfs_key_mask == "code":
                key_mask = 1 - key_mask
        codebook_masks = torch.stack([dynamic_frame_mask(low, frames, g) for _ in range(2)], 1)
        device = x.device
        views = model.aggregate_views(
            x,
            query_masks.to(device),
            None if key_mask is None else key_mask.to(device),
            codebook_masks.to(device),
        )
        u, v = views[:, 0], views[:, 1]
    else:
        u = v = model.aggregate(x)
    z = u
    if s.extrapolation:
        z = dynamic_extrapolation(u, v, sample_extrapolation_weight(s.extrapolation_alpha, g))
    targets = y
    if s.interpolation:
        lam = sample_interpolation_weight(s.interpolation_alpha, g)
        permutation = torch.randperm(x.shape[0], generator=g).to(x.device)
        z, targets = calibrated_interpolation(z, y, ctx.tau, lam, permutation, s.calib_bias)
    return bce_loss(model.classifier(z), targets)


def plain_loss(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """The baseline (also CBS, whose difference is the sampler): BCE on the model's logits."""
    return bce_loss(model(x), y)


def ldam_drw_loss(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """LDAM margins with deferred re-weighting from ``drw_epoch`` (``move.losses``)."""
    s = ctx.settings
    margins = ldam_margins(ctx.counts, s.ldam_max_margin).to(x.device)
    weight = drw_weights(ctx.counts, ctx.epoch, s.drw_epoch, s.cb_beta).to(x.device)
    return ldam_loss(model(x), y, margins, s.ldam_scale, weight)


def eql_objective(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """Equalization loss on the tail classes of the configured groups."""
    return eql_loss(model(x), y, ctx.tail_classes, ctx.settings.eql_gamma, ctx.generator)


def cb_loss(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """Class-balanced BCE (effective number of samples, beta = ``cb_beta``)."""
    weight = class_balanced_weights(ctx.counts, ctx.settings.cb_beta).to(x.device)
    return bce_loss(model(x), y, weight)


def mixup_loss(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """Feature-level mixup of frames and labels, lambda ~ Beta(1, 1) per batch."""
    lam = sample_interpolation_weight(ctx.settings.mixup_alpha, ctx.generator)
    permutation = torch.randperm(x.shape[0], generator=ctx.generator).to(x.device)
    mixed, targets = mixup(x, y, lam, permutation)
    return bce_loss(model(mixed), targets)


def framestack_loss(
    model: VideoClassifier, x: torch.Tensor, y: torch.Tensor, ctx: LossContext
) -> torch.Tensor:
    """FrameStack with the per-class training AP of the previous epoch (0 before the first)."""
    permutation = torch.randperm(x.shape[0], generator=ctx.generator).to(x.device)
    stacked, targets = framestack(x, y, ctx.class_ap.to(x.device), permutation)
    return bce_loss(model(stacked), targets)


LOSSES = {
    "plain": plain_loss,
    "cbs": plain_loss,
    "ldam_drw": ldam_drw_loss,
    "eql": eql_objective,
    "cb_loss": cb_loss,
    "mixup": mixup_loss,
    "framestack": framestack_loss,
    "move": move_loss,
}


@torch.no_grad()
def predict(model: VideoClassifier, loader: DataLoader, device: torch.device) -> np.ndarray:
    """Sigmoid scores ``[N, C]`` for every video of ``loader`` in order."""
    model.eval()
    scores = [
        torch.sigmoid(model(x.to(device, non_blocking=True).float())).cpu() for x, _, _ in loader
    ]
    return torch.cat(scores).numpy()


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch of one run, independent of how many epochs ran before (resume)."""
    return int(np.random.default_rng([seed, epoch]).integers(2**62))


def _atomic_save(obj: dict, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def cached_sha256(path: Path) -> str:
    """sha256 of a (large) input file, cached in ``<path>.sha256`` keyed by its size and mtime.

    A feature file of a full benchmark is tens of GB; hashing it for every one of many training
    runs would cost minutes each. The cache is ignored as soon as the file changes.
    """
    stat = path.stat()
    key = f"{stat.st_size} {stat.st_mtime_ns}"
    cache = path.with_name(path.name + ".sha256")
    try:
        cached_key, digest = cache.read_text().strip().rsplit(" ", 1)
        if cached_key == key and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    digest = file_sha256(path)
    try:
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        tmp.write_text(f"{key} {digest}\n")
        os.replace(tmp, cache)
    except OSError:
        pass  # read-only feature folder: no cache, still correct
    return digest


def git_commit() -> str | None:
    """The commit of the code that produced a result (None outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


class EpochSampler(Sampler[int]):
    """Seeded order of training videos per epoch: a permutation, or class-balanced draws (CBS)."""

    def __init__(self, labels: list[list[int]], seed: int, balanced: bool = False):
        self.labels, self.seed, self.balanced = labels, seed, balanced
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        if self.balanced:
            order = class_balanced_indices(self.labels, len(self.labels), rng)
        else:
            order = rng.permutation(len(self.labels))
        return iter(order.tolist())


def make_loaders(
    problem: Problem, features: Path, settings: TrainSettings
) -> tuple[DataLoader, DataLoader]:
    """Training loader (seeded order, CBS for method 'cbs') and test loader (fixed order)."""
    train_set = FeatureDataset(
        features, problem.train, problem.n_classes, settings.frames_train, True, settings.seed
    )
    test_set = FeatureDataset(
        features, problem.test, problem.n_classes, settings.frames_test, False
    )
    labels = [parse_class_indices(v) for v in problem.train.class_index]
    sampler = EpochSampler(labels, settings.seed, balanced=settings.method == "cbs")
    s = settings
    train_loader = feature_loader(
        train_set, s.batch_size, sampler, s.num_workers, len(train_set) > s.batch_size, s.device
    )
    test_loader = feature_loader(test_set, s.batch_size, None, s.num_workers, device=s.device)
    return train_loader, test_loader


def training_ap(
    model: VideoClassifier, problem: Problem, features: Path, settings: TrainSettings, device
) -> torch.Tensor:
    """Per-class AP on the training videos (uniform frames), FrameStack's signal for the next epoch."""
    train_eval = FeatureDataset(
        features, problem.train, problem.n_classes, settings.frames_train, False
    )
    loader = DataLoader(train_eval, batch_size=settings.batch_size, num_workers=0)
    aps = per_class_average_precision(predict(model, loader, device), train_eval.targets)
    return torch.from_numpy(np.nan_to_num(aps, nan=0.0)).float()


def train(
    features: str | Path,
    split: str | Path,
    out: str | Path,
    checkpoint: str | Path,
    settings: TrainSettings,
    head_min: int,
    tail_max: int,
    progress: bool = True,
) -> dict:
    """Train, evaluate every ``eval_every`` epochs and at the end; write results, per-class CSV, checkpoint.

    Deterministic on CPU for a seed: model init, data order, frame draws, dropout and MOVE's draws
    are all seeded per (seed, epoch), so a run resumed from ``<checkpoint>.partial`` (written after
    every epoch) ends with the same metrics as an uninterrupted one.
    """
    features, out, checkpoint = Path(features), Path(out), Path(checkpoint)
    problem = load_problem(split, features, head_min, tail_max)
    settings = with_feature_dim_of(features, settings)
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    model = VideoClassifier(problem.n_classes, settings.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, list(settings.lr_milestones), settings.lr_gamma
    )
    tau = tail_weighted_criterion(torch.from_numpy(problem.train_counts)).to(device)
    tail_classes = torch.from_numpy(problem.groups == "tail").float()
    train_loader, test_loader = make_loaders(problem, features, settings)
    loss_fn = LOSSES[settings.method]
    class_ap = torch.zeros(problem.n_classes)

    partial = checkpoint.with_name(checkpoint.name + ".partial")
    start_epoch, history = 0, []
    if partial.is_file():
        state = torch.load(partial, map_location=device, weights_only=False)
        if state.get("fingerprint") == settings.fingerprint():
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, history = state["epoch"], state["history"]
            class_ap = state.get("class_ap", class_ap)
            print(f"resuming {checkpoint} after epoch {start_epoch}", file=sys.stderr)
        else:
            print(f"ignoring {partial}: written with other settings", file=sys.stderr)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)

    evaluations = []
    for record in history:
        if "metrics" in record:
            evaluations.append((record["epoch"], record["metrics"]))
    steps_per_epoch = len(train_loader)
    bar = tqdm(
        total=settings.epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"train {settings.method}{'+agg' if settings.aggregators and settings.method != 'move' else ''}",
        unit="batch",
        disable=not progress,
        dynamic_ncols=True,
    )
    for epoch in range(start_epoch, settings.epochs):
        torch.manual_seed(_epoch_seed(settings.seed, epoch))
        generator = torch.Generator().manual_seed(_epoch_seed(settings.seed + 1, epoch))
        train_loader.dataset.set_epoch(epoch)
        train_loader.sampler.set_epoch(epoch)
        context = LossContext(
            settings, tau, problem.train_counts, tail_classes, epoch, generator, class_ap
        )
        model.train()
        losses, load_time, compute_time = [], 0.0, 0.0
        tick = time.perf_counter()
        for x, y, _ in train_loader:
            x, y = x.to(device, non_blocking=True).float(), y.to(device, non_blocking=True)
            loaded = time.perf_counter()
            load_time += loaded - tick
            loss = loss_fn(model, x, y, context)
            if not torch.isfinite(loss):
                raise MoveError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}: lower train.lr "
                    "or check the features for NaN/inf"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            tick = time.perf_counter()
            compute_time += tick - loaded
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", refresh=False)
        scheduler.step()
        record = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "seconds_loading": round(load_time, 4),
            "seconds_compute": round(compute_time, 4),
        }
        if settings.method == "framestack":
            class_ap = training_ap(model, problem, features, settings, device)
        if (epoch + 1) % settings.eval_every == 0 or epoch + 1 == settings.epochs:
            metrics = evaluate(
                predict(model, test_loader, device), test_loader.dataset.targets, problem.groups
            )
            record["metrics"] = metrics
            evaluations.append((epoch + 1, metrics))
            bar.set_postfix(
                epoch=epoch + 1, loss=f"{record['loss']:.4f}", mAP=f"{metrics['mAP']:.3f}"
            )
        history.append(record)
        _atomic_save(
            {
                "fingerprint": settings.fingerprint(),
                "epoch": epoch + 1,
                "history": history,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "class_ap": class_ap,
            },
            partial,
        )
    bar.close()

    final_epoch, final = evaluations[-1]
    best_epoch, best = max(
        evaluations, key=lambda item: -1 if item[1]["mAP"] is None else item[1]["mAP"]
    )
    _atomic_save(
        {
            "model": model.state_dict(),
            "settings": settings.to_dict(),
            "n_classes": problem.n_classes,
            "labels": problem.labels,
            "train_counts": problem.train_counts.tolist(),
            "head_min": head_min,
            "tail_max": tail_max,
        },
        checkpoint,
    )
    results = {
        "method": settings.method,
        "aggregators": settings.aggregators,
        "final": summary(final) | {"epoch": final_epoch},
        "best": summary(best) | {"epoch": best_epoch},
        "history": [
            {k: v if k != "metrics" else summary(v) for k, v in r.items()} for r in history
        ],
        "settings": settings.to_dict(),
        "seed": settings.seed,
        "groups": {"head_min": head_min, "tail_max": tail_max},
        "n_classes": problem.n_classes,
        "n_train": len(problem.train),
        "n_test": len(problem.test),
        "git_commit": git_commit(),
        "features": {"path": str(features), "sha256": cached_sha256(features)},
        "split": {"path": str(split), "sha256": file_sha256(split)},
    }
    write_results(results, final, problem, out)
    partial.unlink(missing_ok=True)
    return results


def summary(metrics: dict) -> dict:
    """Metrics without the per-class list (that goes to the per-class CSV)."""
    return {k: v for k, v in metrics.items() if k != "per_class_AP"}


def per_class_table(metrics: dict, problem: Problem) -> pd.DataFrame:
    """class_index, label, train_count, group, AP for every class."""
    return pd.DataFrame(
        {
            "class_index": range(problem.n_classes),
            "label": problem.labels,
            "train_count": problem.train_counts,
            "group": problem.groups,
            "AP": metrics["per_class_AP"],
        }
    )


def per_class_path(out: Path) -> Path:
    """``results/x.json`` -> ``results/x.per_class.csv``."""
    return out.with_name(out.stem + ".per_class.csv")


def write_results(results: dict, metrics: dict, problem: Problem, out: Path) -> None:
    """Write the per-class CSV and the results JSON atomically."""
    write_csv_atomic(per_class_table(metrics, problem), per_class_path(out))
    write_text_atomic(json.dumps(results, indent=2) + "\n", out)


def evaluate_checkpoint(
    checkpoint: str | Path,
    features: str | Path,
    split: str | Path,
    frames_test: int | None = None,
    batch_size: int = 128,
    device: str = "auto",
) -> dict:
    """Reload a checkpoint written by ``train`` and evaluate it on the split's test videos."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MoveError(f"checkpoint {checkpoint} not found: train first (move train)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    settings = TrainSettings.from_dict(state["settings"])
    problem = load_problem(split, features, state["head_min"], state["tail_max"])
    trained = (settings.model.feature_dim, state["n_classes"])
    check_fits_checkpoint(checkpoint, trained, features, split, problem.n_classes)
    dev = resolve_device(device)
    model = VideoClassifier(state["n_classes"], settings.model).to(dev)
    model.load_state_dict(state["model"])
    test_set = FeatureDataset(
        features, problem.test, problem.n_classes, frames_test or settings.frames_test, False
    )
    scores = predict(model, DataLoader(test_set, batch_size=batch_size), dev)
    return evaluate(scores, test_set.targets, problem.groups)
