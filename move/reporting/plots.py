"""Figures of a run, each written as a PNG with the CSV of the numbers behind it.

Matplotlib (Agg backend, no display needed). Every figure reads in grey-scale: series differ by
marker, line style and hatching, not only colour; axes carry labels and units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from move.errors import MoveError
from move.files import atomic_output, write_text_atomic
from move.reporting.tables import AGGREGATOR_MARK, display_name, imbalance_ratio, run_variant
from move.training.results import per_class_path, read_results

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINES = ["-", "--", "-.", ":"]
GREYS = ["0.0", "0.35", "0.6", "0.8"]
GROUPS = ("head", "medium", "tail")


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend, loaded when a figure is drawn: every ``move``
    command lists ``FIGURES`` (``move plot``'s choices), and pyplot takes about a second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def style(i: int) -> dict:
    """Marker, line style and grey level of series ``i`` (distinct in grey-scale)."""
    return {
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINES[i % len(LINES)],
        "color": GREYS[i % len(GREYS)] if i < len(GREYS) else f"C{i}",
    }


def save(fig: plt.Figure, out: str | Path, data: pd.DataFrame) -> Path:
    """Write the PNG and its data CSV (``<out>.csv``) atomically; return the CSV path."""
    plt = pyplot()
    out = Path(out)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    csv = out.with_suffix(".csv")
    write_text_atomic(data.to_csv(index=False), csv)
    return csv


def run_name(path: str | Path, results: dict, with_ratio: bool = True) -> str:
    """Legend name of a run over its seeds: its method's display name and Agg mark, backbone and
    imbalance ratio (the seed is left out: a series is the mean over the seeds)."""
    method, aggregators = run_variant(path, results)
    name = f"{display_name(method)} {AGGREGATOR_MARK[aggregators]} {results.get('backbone') or ''}"
    ratio = results.get("imbalance_ratio")
    if with_ratio and ratio is not None:
        name += f" IR {float(ratio):g}"
    return " ".join(name.split())


def seeds_note(table: pd.DataFrame) -> str:
    """' (mean over seeds 0, 1, 2; band: min-max)' for a table with a ``seed`` column."""
    seeds = sorted({int(seed) for seed in table["seed"].dropna()})
    if len(seeds) < 2:
        return f" (seed {seeds[0]})" if seeds else ""
    return f" (mean over seeds {', '.join(map(str, seeds))}; band: min–max)"


def draw_mean(
    ax: plt.Axes, x, values: pd.DataFrame, label: str, i: int, scale: float = 100
) -> None:
    """The mean of ``values``' columns (one per seed) over ``x``, a min-max band when there are
    several seeds."""
    mean = values.mean(axis=1) * scale
    ax.plot(x, mean, label=label, markersize=4, **style(i))
    if values.shape[1] > 1:
        color = style(i)["color"]
        ax.fill_between(
            x, values.min(axis=1) * scale, values.max(axis=1) * scale, color=color, alpha=0.2, lw=0
        )


def per_class_ap(results_paths: list[str | Path], out: str | Path) -> Path:
    """Figure 1: per-class AP against class rank (head -> tail), one series per run (the mean
    over its seeds, a band for their spread)."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    frames = []
    for path in results_paths:
        results = read_results(path)
        table = pd.read_csv(per_class_path(Path(path)))
        table = table.sort_values(["train_count", "class_index"], ascending=[False, True])
        table = table.reset_index(drop=True)
        table["rank"] = np.arange(1, len(table) + 1)
        table.insert(0, "run", run_name(path, results))
        table.insert(1, "seed", results.get("seed"))
        frames.append(table)
    data = pd.concat(frames, ignore_index=True)
    for i, (name, group) in enumerate(data.groupby("run", sort=False)):
        values = group.pivot_table(index="rank", columns="seed", values="AP", dropna=False)
        draw_mean(ax, values.index, values, name, i)
    groups = frames[0]["group"].tolist()
    bounds = [
        (g, groups.index(g) + 1, len(groups) - groups[::-1].index(g)) for g in GROUPS if g in groups
    ]
    for hatch, (group, first, last) in zip(["//", "", "\\\\"], bounds, strict=False):
        ax.axvspan(first - 0.5, last + 0.5, facecolor="none", edgecolor="0.75", hatch=hatch, lw=0)
        ax.text((first + last) / 2, 101, group, ha="center", va="bottom", fontsize=9)
        if last < len(frames[0]):
            ax.axvline(last + 0.5, color="0.3", linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("class rank by number of training videos (1 = head)")
    ax.set_ylabel("average precision (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Per-class AP, head → tail" + seeds_note(data), pad=18, fontsize=10)
    return save(fig, out, data)


def map_vs_ir(results_paths: list[str | Path], out: str | Path) -> Path:
    """Figure 2: final-epoch mAP (all/head/medium/tail) against imbalance ratio, one line per
    method and backbone: the mean over seeds, error bars of one sample std."""
    plt = pyplot()
    rows = []
    for path in results_paths:
        results = read_results(path)
        final = results["final"]
        rows.append(
            {
                "method": run_name(path, results, with_ratio=False),
                "ir": imbalance_ratio(path, results),
                "seed": results.get("seed"),
                "mAP": final.get("mAP"),
                "head_mAP": final.get("head_mAP"),
                "medium_mAP": final.get("medium_mAP"),
                "tail_mAP": final.get("tail_mAP"),
                "top1": final.get("top1"),
                "file": str(path),
            }
        )
    table = pd.DataFrame(rows).sort_values(["method", "ir", "seed"]).reset_index(drop=True)
    for column in ("mAP", "tail_mAP"):  # what the figure draws, in its CSV
        spread = table.groupby(["method", "ir"])[column].agg(["mean", "std", "count"])
        table = table.join(spread.add_prefix(f"{column}_"), on=["method", "ir"])
    panels = [("mAP", "all classes"), ("head_mAP", "head"), ("medium_mAP", "medium")]
    panels.append(("tail_mAP", "tail"))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), sharey=True)
    for ax, (column, title) in zip(axes, panels, strict=True):
        for i, (method, group) in enumerate(table.groupby("method", sort=True)):
            values = pd.to_numeric(group[column], errors="coerce") * 100
            stats = values.groupby(group["ir"]).agg(["mean", "std"])
            ax.errorbar(
                stats.index,
                stats["mean"],
                yerr=stats["std"].fillna(0),
                label=method,
                capsize=3,
                **style(i),
            )
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("imbalance ratio (n_min / n_max, log scale)")
        ax.grid(True, color="0.9")
    axes[0].set_ylabel("mAP (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Final-epoch mAP" + seeds_note(table).replace("band: min–max", "bars: ± 1 std"), fontsize=10
    )
    return save(fig, out, table)


def attention_maps(
    videos: list[dict],
    out: str | Path,
) -> Path:
    """Figure 3 (Fig. 2 analogue): per video a frame strip, PSA attention and codebook heat map.

    ``videos``: dicts with ``video_id``, ``label``, ``frames`` (uint8 ``[T, H, W, 3]`` or None)
    and what ``move.reporting.diagnostics.aggregator_maps`` gives: ``attention [heads, T]`` (PSA),
    ``assignment [T, K]`` (codebook) and/or ``frame_scores [T]`` (frame-wise classifier). A
    model without one of them (Table 4 rows a-c) gets a note in that panel.
    """
    plt = pyplot()
    if not videos:
        raise MoveError("no videos to show: the split has no test videos")
    fig, axes = plt.subplots(
        3 * len(videos),
        1,
        figsize=(8, 4.6 * len(videos)),
        gridspec_kw={"height_ratios": [1, 1.2, 1.4] * len(videos)},
    )
    rows = []
    for n, video in enumerate(videos):
        strip_ax, weight_ax, heat_ax = axes[3 * n : 3 * n + 3]
        frames_count = _frames_count(video)
        _frame_strip(strip_ax, video, frames_count)
        _frame_weights(weight_ax, video, frames_count)
        _assignment_map(fig, heat_ax, video)
        rows += _map_rows(video, frames_count)
    fig.tight_layout()
    return save(fig, out, pd.DataFrame(rows))


def _frames_count(video: dict) -> int:
    """Frames of a video's maps (from whichever map the model gave)."""
    for key, axis in (("attention", 1), ("assignment", 0), ("frame_scores", 0)):
        if key in video:
            return np.asarray(video[key]).shape[axis]
    raise MoveError(f"video {video['video_id']}: the model gave no attention/assignment/scores")


def _frame_strip(ax: plt.Axes, video: dict, frames_count: int) -> None:
    """The decoded frames side by side (blank when the videos are not at hand), titled by video."""
    if video.get("frames") is not None:
        strip = np.concatenate(list(video["frames"]), axis=1)
        ax.imshow(strip, aspect="auto", extent=(-0.5, frames_count - 0.5, 0, 1))
    ax.set_xlim(-0.5, frames_count - 0.5)
    ax.set_yticks([])
    ax.set_xticks([])
    ax.set_title(f"{video['video_id']} (class '{video['label']}')", fontsize=9)


def _frame_weights(ax: plt.Axes, video: dict, frames_count: int) -> None:
    """PSA attention per head and their mean; a frame-wise model's per-frame scores instead."""
    t = np.arange(frames_count)
    if "attention" in video:
        attention = np.asarray(video["attention"])
        for h in range(attention.shape[0]):
            ax.plot(t, attention[h], label=f"head {h + 1}", markersize=4, **style(h))
        ax.plot(t, attention.mean(0), color="0.0", linewidth=2.5, label="mean")
        ax.set_ylabel("PSA attention\n(softmax weight)")
        ax.legend(fontsize=7, ncol=attention.shape[0] + 1, loc="upper right")
    elif "frame_scores" in video:
        ax.plot(t, video["frame_scores"], label="frame score", **style(0))
        ax.set_ylabel("frame-wise score\n(sigmoid, top class)")
        ax.set_ylim(0, 1.05)
    else:
        ax.text(0.5, 0.5, "no PSA in this model (C-A only)", ha="center", va="center")
        ax.set_yticks([])
    ax.set_xlim(-0.5, frames_count - 0.5)


def _assignment_map(fig: plt.Figure, ax: plt.Axes, video: dict) -> None:
    """Codebook soft assignment rho_k(x_t) as a grey heat map, or a note without a codebook."""
    if "assignment" not in video:
        ax.text(0.5, 0.5, "no codebook aggregator in this model", ha="center", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    image = ax.imshow(
        np.asarray(video["assignment"]).T,
        aspect="auto",
        cmap="Greys",
        vmin=0,
        interpolation="nearest",
    )
    ax.set_xlabel("frame index (sampled frame)")
    ax.set_ylabel("codebook cluster k")
    colorbar_ax = ax.inset_axes([1.01, 0.0, 0.015, 1.0])
    fig.colorbar(image, cax=colorbar_ax).set_label("ρ_k(x_t)\n(probability)", fontsize=8)


def _map_rows(video: dict, frames_count: int) -> list[dict]:
    """The figure's numbers: one row per frame with every head's attention and cluster's rho."""
    rows = []
    for frame in range(frames_count):
        record = {"video_id": video["video_id"], "label": video["label"], "frame": frame}
        if "attention" in video:
            attention = np.asarray(video["attention"])
            record |= {f"attention_head{h + 1}": attention[h, frame] for h in range(len(attention))}
        if "frame_scores" in video:
            record["frame_score"] = float(video["frame_scores"][frame])
        if "assignment" in video:
            assignment = np.asarray(video["assignment"])
            record |= {f"cluster{k}": assignment[frame, k] for k in range(assignment.shape[1])}
        rows.append(record)
    return rows


def confidence(table: pd.DataFrame, train_counts: np.ndarray, out: str | Path) -> Path:
    """Figure 4 (Fig. 4 analogue): per-class confidence of original vs. interpolated samples."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    table = table.copy()
    table["train_count"] = np.asarray(train_counts)[table.class_index]
    table = table.sort_values(["train_count", "class_index"], ascending=[False, True])
    table = table.reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    width = 0.4
    left.bar(table["rank"] - width / 2, table.original, width, label="original", color="0.3")
    left.bar(
        table["rank"] + width / 2,
        table.interpolated,
        width,
        label="interpolated (within class)",
        color="white",
        edgecolor="0.0",
        hatch="///",
    )
    left.set_xlabel("class rank by number of training videos (1 = head)")
    left.set_ylabel("mean confidence (sigmoid score)")
    left.set_ylim(0, 1.05)
    left.legend(fontsize=8)
    right.plot(table["rank"], table.normalised_difference, marker="o", color="0.0")
    right.axhline(0, color="0.5", linestyle=":")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("class rank by number of training videos (1 = head)")
    right.set_ylabel("(original − interpolated) / original")
    fig.tight_layout()
    return save(fig, out, table)


def training_curves(results_paths: list[str | Path], out: str | Path) -> Path:
    """Figure 5: training loss per epoch and test mAP at each evaluation, per run (the mean over
    its seeds, a band for their spread)."""
    plt = pyplot()
    fig, (loss_ax, map_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    rows = []
    for path in results_paths:
        results = read_results(path)
        name = run_name(path, results)
        for record in results.get("history", []):
            metrics = record.get("metrics") or {}
            rows.append(
                {
                    "run": name,
                    "seed": results.get("seed"),
                    "epoch": record["epoch"],
                    "loss": record.get("loss"),
                    "mAP": metrics.get("mAP"),
                    "head_mAP": metrics.get("head_mAP"),
                    "medium_mAP": metrics.get("medium_mAP"),
                    "tail_mAP": metrics.get("tail_mAP"),
                }
            )
    columns = ["run", "seed", "epoch", "loss", "mAP", "head_mAP", "medium_mAP", "tail_mAP"]
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        raise MoveError("the results have no per-epoch history: retrain with this version")
    for i, (name, group) in enumerate(table.groupby("run", sort=False)):
        losses = group.dropna(subset=["loss"]).pivot_table(
            index="epoch", columns="seed", values="loss"
        )
        draw_mean(loss_ax, losses.index, losses, name, i, scale=1)
        evals = group.dropna(subset=["mAP"])
        draw_mean(map_ax, *pivot(evals, "mAP"), f"{name} all", i)
        tail = evals.dropna(subset=["tail_mAP"])
        if len(tail):
            x, values = pivot(tail, "tail_mAP")
            map_ax.plot(
                x,
                values.mean(axis=1) * 100,
                label=f"{name} tail",
                linestyle=":",
                marker="x",
                color=style(i)["color"],
            )
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss (BCE, mean over batches)")
    map_ax.set_xlabel("epoch")
    map_ax.set_ylabel("test mAP (%)")
    for ax in (loss_ax, map_ax):
        ax.grid(True, color="0.9")
        ax.legend(fontsize=7)
    fig.suptitle("Training curves" + seeds_note(table), fontsize=10)
    fig.tight_layout()
    return save(fig, out, table)


def pivot(table: pd.DataFrame, column: str) -> tuple[pd.Index, pd.DataFrame]:
    """(epochs, one column of ``column`` per seed)."""
    values = table.pivot_table(index="epoch", columns="seed", values=column)
    return values.index, values


def image_stats(path: str | Path) -> tuple[tuple[int, ...], float]:
    """Shape and pixel variance of a PNG (tests: a figure that is not blank has variance > 0)."""
    plt = pyplot()
    image = plt.imread(path)
    return image.shape, float(np.var(image[..., :3]))


def of_dataset(relative: Path, dataset: str) -> bool:
    """Whether a benchmark file (relative to the benchmarks folder) is a job of ``dataset``:
    named ``<dataset>`` or ``<dataset>_...``, or under a ``<dataset>/`` folder (training runs)."""
    parts = relative.with_suffix("").parts[1:]
    return parts[0] == dataset or parts[-1] == dataset or parts[-1].startswith(f"{dataset}_")


def runtimes(benchmarks: str | Path, out: str | Path, dataset: str | None = None) -> Path:
    """Runtime of each stage: one bar per Snakemake benchmark file ``logs/benchmarks/<rule>/<job>.tsv``.

    With ``dataset``, only the jobs named after it (``<dataset>`` or ``<dataset>_...``).
    """
    plt = pyplot()
    # <rule>/<job>.tsv, <rule>/lists/<job>.tsv, train/<dataset>/<backbone>/ir<IR>/<job>.tsv
    files = sorted(Path(benchmarks).rglob("*.tsv"))
    if dataset is not None:
        files = [f for f in files if of_dataset(f.relative_to(benchmarks), dataset)]
    if not files:
        which = f" of dataset {dataset}" if dataset else ""
        raise MoveError(f"no benchmark files{which} under {benchmarks}: run the workflow first")
    rows = []
    for path in files:
        table = pd.read_csv(path, sep="\t")
        rule = path.relative_to(benchmarks).parts[0]
        job = "/".join(path.relative_to(benchmarks).with_suffix("").parts[1:])
        row = {"rule": rule, "job": job, "seconds": float(table["s"].iloc[-1])}
        for column in ("max_rss", "cpu_time"):
            if column in table:
                row[column] = pd.to_numeric(table[column], errors="coerce").iloc[-1]
        rows.append(row)
    data = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(data) + 1.2))
    hatches = ["", "//", "..", "\\\\", "xx", "--"]
    rules = list(dict.fromkeys(data.rule))
    for i, rule in enumerate(rules):
        part = data[data.rule == rule]
        ax.barh(
            [f"{r} {j}" for r, j in zip(part.rule, part.job, strict=True)],
            part.seconds,
            color="0.85" if i % 2 else "0.45",
            edgecolor="0.0",
            hatch=hatches[i % len(hatches)],
        )
    ax.invert_yaxis()
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("rule and job")
    ax.grid(True, axis="x", color="0.9")
    fig.tight_layout()
    return save(fig, out, data)


# --- the figures of ``move plot``, one registry ---------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A figure ``move plot`` draws: its help, the options it needs, and how it draws them
    (``draw(options) -> path of its CSV``; ``options`` has the parsed arguments)."""

    name: str
    help: str
    needs: tuple[str, ...]
    draw: Callable[[Any], Path]


def draw_attention(options: Any) -> Path:
    """PSA attention and codebook assignments of test videos (Fig. 2), with frames if found."""
    from move.reporting.diagnostics import inspected_videos

    have_frames = options.annotations and options.videos
    source = (options.annotations, options.videos) if have_frames else None
    videos = inspected_videos(
        options.checkpoint, options.features, options.split, options.video, options.count, source
    )
    return attention_maps(videos, options.out)


def draw_confidence(options: Any) -> Path:
    """Original vs interpolated confidence per class of a checkpoint (Fig. 4)."""
    from move.datasets.splits import read_split
    from move.reporting.diagnostics import interpolation_confidence, load_model

    model, state = load_model(options.checkpoint)
    split = read_split(options.split)
    table = interpolation_confidence(
        model, options.features, split, state.n_classes, options.subset, options.lam, options.seed
    )
    return confidence(table, state.train_counts, options.out)


TRAINED = ("checkpoint", "features", "split")
FIGURES: dict[str, Figure] = {
    figure.name: figure
    for figure in (
        Figure(
            "per-class-ap",
            "AP per class head->tail",
            ("results",),
            lambda o: per_class_ap(o.results, o.out),
        ),
        Figure(
            "map-vs-ir",
            "mAP (all/H/M/T) per method vs IR",
            ("results",),
            lambda o: map_vs_ir(o.results, o.out),
        ),
        Figure(
            "attention",
            "PSA attention and codebook assignments of test videos (Fig. 2)",
            TRAINED,
            draw_attention,
        ),
        Figure(
            "confidence",
            "original vs interpolated confidence per class (Fig. 4)",
            TRAINED,
            draw_confidence,
        ),
        Figure(
            "curves",
            "loss and mAP per epoch",
            ("results",),
            lambda o: training_curves(o.results, o.out),
        ),
        Figure(
            "runtimes",
            "seconds per workflow job",
            ("benchmarks",),
            lambda o: runtimes(o.benchmarks, o.out, o.dataset),
        ),
    )
}


def draw(name: str, options: Any) -> Path:
    """Draw figure ``name`` from ``options``; a missing option -> one line naming it."""
    figure = FIGURES[name]
    missing = [f"--{need}" for need in figure.needs if not getattr(options, need, None)]
    if missing:
        raise MoveError(f"'move plot {name}' needs {', '.join(missing)}")
    return figure.draw(options)
