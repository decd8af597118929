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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from move.backbones import file_sha256
from move.data import FeatureDataset, parse_class_indices
from move.device import resolve_device
from move.errors import MoveError
from move.features import open_feature_file, video_ids
from move.metrics import evaluate
from move.model import ModelSettings, VideoClassifier
from move.splits import class_group, read_split, write_csv_atomic
from move.vicinity import (
    calibrated_interpolation,
    dynamic_extrapolation,
    dynamic_frame_mask,
    sample_extrapolation_weight,
    sample_interpolation_weight,
    sample_tau,
    tail_weighted_criterion,
)

METHODS = ("plain", "move")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a training run (defaults: the authors' MiniKinetics setting)."""

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
    extrapolation: bool = True
    interpolation: bool = True
    lower_bound: float = 3.0
    extrapolation_alpha: float = 2.0
    interpolation_alpha: float = 1.0
    calib_bias: float = 0.5
    device: str = "auto"
    num_workers: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> TrainSettings:
        """Build from a config section; model keys may sit at top level or under ``model``."""
        values = dict(values)
        model_keys = {f.name for f in dataclasses.fields(ModelSettings)}
        model_values = dict(values.pop("model", {}) or {})
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
        settings = cls(**values, model=ModelSettings(**model_values))
        if settings.method not in METHODS:
            raise MoveError(
                f"unknown method '{settings.method}': choose one of {', '.join(METHODS)}"
            )
        if settings.method == "move" and not settings.model.aggregators:
            raise MoveError("method 'move' needs aggregators: set train.aggregators to true")
        return settings

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the settings, used to refuse resuming from a run with other settings."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


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


def move_loss(
    model: VideoClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    tau: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    """MOVE's training objective (Eq. 5-6 over the vicinity of Eq. 8-12), BCE on the mixed labels.

    DFS gives two masked views of each video -> prototypes u, v (Eq. 8-10); dynamic extrapolation
    (Eq. 11) makes z_hat; calibrated interpolation (Eq. 12) mixes z_hat across the batch. Each
    part can be switched off (Table 4's ablation rows).
    """
    batch, frames, _ = x.shape
    if settings.dfs:
        s_tau = sample_tau(tau, y)
        masks = [
            dynamic_frame_mask(s_tau, frames, settings.lower_bound, generator).to(x.device)
            for _ in range(4)
        ]
        u = model.aggregate(x, query_mask=masks[0], key_mask=masks[2], codebook_mask=masks[0])
        v = model.aggregate(x, query_mask=masks[1], key_mask=masks[3], codebook_mask=masks[1])
    else:
        u = v = model.aggregate(x)
    z = u
    if settings.extrapolation:
        z = dynamic_extrapolation(
            u, v, sample_extrapolation_weight(settings.extrapolation_alpha, generator)
        )
    targets = y
    if settings.interpolation:
        lam = sample_interpolation_weight(settings.interpolation_alpha, generator)
        permutation = torch.randperm(batch, generator=generator).to(x.device)
        z, targets = calibrated_interpolation(z, y, tau, lam, permutation, settings.calib_bias)
    return F.binary_cross_entropy_with_logits(model.classifier(z), targets)


def plain_loss(
    model: VideoClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    tau: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    """The baseline: BCE on the model's logits."""
    return F.binary_cross_entropy_with_logits(model(x), y)


LOSSES = {"plain": plain_loss, "move": move_loss}


@torch.no_grad()
def predict(model: VideoClassifier, loader: DataLoader, device: torch.device) -> np.ndarray:
    """Sigmoid scores ``[N, C]`` for every video of ``loader`` in order."""
    model.eval()
    scores = [torch.sigmoid(model(x.to(device))).cpu() for x, _, _ in loader]
    return torch.cat(scores).numpy()


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.default_rng([seed, epoch]).integers(2**62))


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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


def make_loaders(
    problem: Problem, features: Path, settings: TrainSettings
) -> tuple[DataLoader, DataLoader]:
    train_set = FeatureDataset(
        features, problem.train, problem.n_classes, settings.frames_train, True, settings.seed
    )
    test_set = FeatureDataset(
        features, problem.test, problem.n_classes, settings.frames_test, False
    )
    train_loader = DataLoader(
        train_set,
        batch_size=settings.batch_size,
        shuffle=True,
        num_workers=settings.num_workers,
        drop_last=len(train_set) > settings.batch_size,
    )
    test_loader = DataLoader(
        test_set, batch_size=settings.batch_size, shuffle=False, num_workers=settings.num_workers
    )
    return train_loader, test_loader


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
    """Train, evaluate every ``eval_every`` epochs and at the end; write results, per-class CSV, checkpoint."""
    features, out, checkpoint = Path(features), Path(out), Path(checkpoint)
    problem = load_problem(split, features, head_min, tail_max)
    device = resolve_device(settings.device)
    torch.manual_seed(settings.seed)
    model = VideoClassifier(problem.n_classes, settings.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, list(settings.lr_milestones), settings.lr_gamma
    )
    tau = tail_weighted_criterion(torch.from_numpy(problem.train_counts)).to(device)
    train_loader, test_loader = make_loaders(problem, features, settings)
    loss_fn = LOSSES[settings.method]

    partial = checkpoint.with_name(checkpoint.name + ".partial")
    start_epoch, history = 0, []
    if partial.is_file():
        state = torch.load(partial, map_location=device, weights_only=False)
        if state.get("fingerprint") == settings.fingerprint():
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, history = state["epoch"], state["history"]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)

    evaluations = []
    for record in history:
        if "metrics" in record:
            evaluations.append((record["epoch"], record["metrics"]))
    bar = tqdm(
        range(start_epoch, settings.epochs),
        initial=start_epoch,
        total=settings.epochs,
        desc=f"train {settings.method}",
        unit="epoch",
        disable=not progress,
    )
    for epoch in bar:
        torch.manual_seed(_epoch_seed(settings.seed, epoch))
        generator = torch.Generator().manual_seed(_epoch_seed(settings.seed + 1, epoch))
        train_loader.dataset.set_epoch(epoch)
        model.train()
        losses = []
        for x, y, _ in train_loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model, x, y, tau, settings, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if (epoch + 1) % settings.eval_every == 0 or epoch + 1 == settings.epochs:
            metrics = evaluate(
                predict(model, test_loader, device), test_loader.dataset.targets, problem.groups
            )
            record["metrics"] = metrics
            evaluations.append((epoch + 1, metrics))
            bar.set_postfix(loss=f"{record['loss']:.4f}", mAP=f"{metrics['mAP']:.3f}")
        else:
            bar.set_postfix(loss=f"{record['loss']:.4f}")
        history.append(record)
        _atomic_save(
            {
                "fingerprint": settings.fingerprint(),
                "epoch": epoch + 1,
                "history": history,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            partial,
        )

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
        "features": {"path": str(features), "sha256": file_sha256(features)},
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, out)


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
    dev = resolve_device(device)
    model = VideoClassifier(state["n_classes"], settings.model).to(dev)
    model.load_state_dict(state["model"])
    test_set = FeatureDataset(
        features, problem.test, problem.n_classes, frames_test or settings.frames_test, False
    )
    scores = predict(model, DataLoader(test_set, batch_size=batch_size), dev)
    return evaluate(scores, test_set.targets, problem.groups)
