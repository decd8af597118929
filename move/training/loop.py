"""The training loop: the same for every method; it calls the registered method's hooks.

Reads a feature file and a split CSV; writes the results JSON and the per-class CSV
(``move.training.results``) and the checkpoint (``move.training.artefacts``). Deterministic on CPU for a seed: model init, data
order, frame draws, dropout and the methods' draws are seeded per (seed, epoch), so a run resumed
from ``<checkpoint>.partial`` (written after every epoch) ends with the same metrics.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from move.device import resolve_device
from move.errors import MoveError
from move.features import open_feature_file
from move.files import holding_lock
from move.training import artefacts, results
from move.training.context import Batch, RunContext
from move.training.evaluation import evaluate_model
from move.training.loading import Problem, load_problem, make_loaders
from move.training.methods import resolve_settings
from move.training.precision import compile_model, forward_precision, matmul_precision
from move.training.registry import Method
from move.training.settings import TrainSettings
from move.training.vicinity import tail_weighted_criterion


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch of one run, independent of how many epochs ran before (resume)."""
    return int(np.random.default_rng([seed, epoch]).integers(2**62))


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


def adam(model: torch.nn.Module, context: RunContext) -> torch.optim.Optimizer:
    """The authors' optimiser: Adam over every parameter at ``lr``."""
    return torch.optim.Adam(model.parameters(), lr=context.settings.lr)


def train_step(
    model: torch.nn.Module,
    method: Method,
    batch: Batch,
    context: RunContext,
    optimizer: torch.optim.Optimizer,
    grad_clip: float | None,
) -> float:
    """One optimiser step on one batch: the method's transform and loss, clipping, update.

    The forward pass runs in the run's precision (``train.precision``: bfloat16 autocast for
    bf16); the loss always in float32 (``.float()`` is the same tensor for a float32 run).
    """
    with forward_precision(context.settings.precision, batch.x.device):
        logits, targets = method.transform(model, batch, context)
    loss = method.loss(logits.float(), targets, batch, context)
    if not torch.isfinite(loss):
        raise MoveError(
            f"training loss became {loss.item()} at epoch {context.epoch + 1}: lower train.lr "
            "or check the features for NaN/inf"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.classifier.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    context: RunContext,
    optimizer: torch.optim.Optimizer,
    bar: tqdm,
) -> dict:
    """One pass over the method's epoch order; the epoch's record (mean loss, timings)."""
    device = next(model.parameters()).device
    method = context.method
    grad_clip = context.settings.classifier_grad_clip(method.grad_clip)
    loader.sampler.set_epoch(context.epoch)
    model.train()
    losses, load_time, compute_time = [], 0.0, 0.0
    tick = time.perf_counter()
    with matmul_precision(context.settings.precision, device):
        for x, y, index, anchor in loader:
            x = x.to(device, non_blocking=True).float()  # stored float16: half the bytes to move
            batch = Batch(x, y.to(device, non_blocking=True), index, anchor.to(device))
            loaded = time.perf_counter()
            load_time += loaded - tick
            losses.append(train_step(model, method, batch, context, optimizer, grad_clip))
            tick = time.perf_counter()
            compute_time += tick - loaded
            bar.update(1)
            bar.set_postfix(epoch=context.epoch + 1, loss=f"{losses[-1]:.4f}", refresh=False)
    if method.end_of_epoch is not None:
        method.end_of_epoch(context)
    return {
        "epoch": context.epoch + 1,
        "loss": float(np.mean(losses)),
        "seconds_loading": round(load_time, 4),
        "seconds_compute": round(compute_time, 4),
    }


class Run:
    """One training run's moving parts: model, optimiser, scheduler, loaders, method, context.

    The method is resolved once (``settings`` already hold its filled-in settings). A method with
    stages (``Method.stage``) gets a fresh optimiser and scheduler from its
    ``configure_optimizer`` hook at the first epoch of each stage.
    """

    def __init__(self, problem: Problem, features: Path, settings: TrainSettings, method: Method):
        self.problem, self.settings, self.method = problem, settings, method
        self.device = resolve_device(settings.device)
        torch.manual_seed(settings.seed)
        self.model = artefacts.build_model(problem.n_classes, settings).to(self.device)
        if settings.compile:
            reason = compile_model(self.model, self.device)
            if reason is not None:
                print(reason, file=sys.stderr)
        options = method.options(settings.method_settings)
        self.train_loader, self.test_loader = make_loaders(
            problem, features, settings, method.sampler, options
        )
        tau = tail_weighted_criterion(torch.from_numpy(problem.train_counts)).to(self.device)
        self.context = RunContext(
            settings,
            method,
            options,
            tau,
            problem.train_counts,
            videos=len(problem.train),
            model=self.model,
        )
        self.stage = method.stage_of(0, options)
        self.configure(self.stage)
        self.history: list[dict] = []

    def configure(self, stage: int) -> None:
        """The optimiser and learning-rate schedule of a stage (the method's, else Adam)."""
        self.stage = stage
        build = self.method.configure_optimizer or adam
        self.optimizer = build(self.model, self.context)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, list(self.settings.lr_milestones), self.settings.lr_gamma
        )

    def resume(self, progress: artefacts.Progress) -> None:
        """Continue from a saved progress file: weights, optimiser, scheduler, method state."""
        self.context.epoch = progress.epoch
        stage = self.method.stage_of(max(progress.epoch - 1, 0), self.context.options)
        if stage != self.stage:  # the saved optimiser is the last stage's
            self.configure(stage)
        self.model.load_state_dict(progress.model)
        self.optimizer.load_state_dict(progress.optimizer)
        self.scheduler.load_state_dict(progress.scheduler)
        self.context.state = progress.method_state
        self.history = progress.history

    def progress(self) -> artefacts.Progress:
        """What ``resume`` needs, after the epochs run so far."""
        return artefacts.Progress(
            epoch=len(self.history),
            history=self.history,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            method_state=self.context.state,
        )

    def run_epoch(self, epoch: int, bar: tqdm) -> dict:
        """Train one epoch (seeded by (seed, epoch)), evaluate when due; the epoch's record."""
        s = self.settings
        torch.manual_seed(epoch_seed(s.seed, epoch))
        self.context.epoch = epoch
        self.context.generator = torch.Generator().manual_seed(epoch_seed(s.seed + 1, epoch))
        stage = self.method.stage_of(epoch, self.context.options)
        if stage != self.stage:
            self.configure(stage)
        record = train_epoch(self.model, self.train_loader, self.context, self.optimizer, bar)
        self.scheduler.step()
        if (epoch + 1) % s.eval_every == 0 or epoch + 1 == s.epochs:
            record["metrics"] = evaluate_model(
                self.model, self.test_loader, self.problem, self.device
            )
            bar.set_postfix(epoch=epoch + 1, mAP=f"{record['metrics']['mAP']:.3f}")
        return record


@holding_lock("checkpoint", "training")
def train(
    features: str | Path,
    split: str | Path,
    out: str | Path,
    checkpoint: str | Path,
    settings: TrainSettings,
    head_min: int,
    tail_max: int,
    progress: bool = True,
    run_info: results.RunInfo | None = None,
) -> dict:
    """Train, evaluate every ``eval_every`` epochs and at the end; write results, per-class CSV,
    checkpoint. Holds ``<checkpoint>.lock`` while it runs: a second run writing the same
    checkpoint (and resume state) is refused, naming this one."""
    features, out, checkpoint = Path(features), Path(out), Path(checkpoint)
    problem = load_problem(split, features, head_min, tail_max)
    method, settings = resolve_settings(with_feature_dim_of(features, settings))
    run = Run(problem, features, settings, method)
    inputs = artefacts.progress_inputs(features, split)
    saved = artefacts.load_progress(checkpoint, settings, split, problem.labels, inputs)
    if saved is not None:
        run.resume(saved)
        print(f"resuming {checkpoint} after epoch {saved.epoch}", file=sys.stderr)
    steps = len(run.train_loader)
    bar = tqdm(
        total=settings.epochs * steps,
        initial=len(run.history) * steps,
        desc=f"train {method.variant(settings.aggregators)}",
        unit="batch",
        disable=not progress,
        dynamic_ncols=True,
    )
    saved_at = time.monotonic()
    for epoch in range(len(run.history), settings.epochs):
        run.history.append(run.run_epoch(epoch, bar))
        due = time.monotonic() - saved_at >= 60 * settings.resume_every_minutes
        if due and epoch + 1 < settings.epochs:  # the last epoch's state is the checkpoint
            artefacts.save_progress(checkpoint, run.progress(), settings, problem.labels, inputs)
            saved_at = time.monotonic()
    bar.close()
    groups = (head_min, tail_max)
    artefacts.save_checkpoint(checkpoint, run.model, settings, problem, groups)
    variant = method.variant(settings.aggregators)
    run_info = run_info or results.RunInfo()
    recorded = {"features": features, "split": Path(split), "groups": groups}
    document = results.results_document(settings, variant, problem, run.history, run_info, recorded)
    final = [r for r in run.history if "metrics" in r][-1]["metrics"]
    results.write_results(document, final, problem, out)
    artefacts.progress_path(checkpoint).unlink(missing_ok=True)
    return document
