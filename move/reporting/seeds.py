"""Tables over seeds: the paper's own table (Table 3; Tables 1-2 for VideoLT) and its ablation
(Table 4), each cell the mean ± sample std of one (variant, backbone, IR) over its seeds, the
paper's number beside and the difference in units of our std.

Cells are grouped by what each results JSON records (variant, backbone, imbalance ratio, seed),
never by file name; runs that differ in anything but the seed (settings, features, groups) are
refused, naming the two files, and the CSV lists the files each cell averaged. No torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from move.errors import MoveError
from move.extraction.backbones import PAPER_ORDER, kinetics_trained
from move.files import write_text_atomic
from move.reporting.paper import paper_ablation, paper_result
from move.reporting.tables import AGGREGATOR_MARK, display_name, one_dataset, run_variant
from move.training.methods import extended_variants, variant_of
from move.training.results import read_results
from move.training.settings import NOT_IN_FINGERPRINT, ModelSettings, TrainSettings

PROTOCOLS = {
    "best": "the best evaluation of each run (every eval_every epochs: the paper's protocol, "
    "the one the paper's numbers follow)",
    "final": "the last epoch of each run (the honest headline)",
}
IR_METRICS = {"mAP": "AP", "top1": "ACC"}  # Table 3's columns per imbalance ratio
GROUP_METRICS = {
    "mAP": "All",
    "head_mAP": "H",
    "medium_mAP": "M",
    "tail_mAP": "T",
    "top1": "A@1",
    "top5": "A@5",
}
# Settings that may differ between the seeds of one cell: the seed itself, and what does not
# decide the result (the device, and TrainSettings' NOT_IN_FINGERPRINT: loader workers, how the
# run is kept).
PER_RUN_SETTINGS = ("seed", "device", *NOT_IN_FINGERPRINT)


@dataclass
class Cell:
    """The runs of one table cell (one variant, backbone and IR), one per seed."""

    runs: list[tuple[Path, dict]] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [results.get("seed") for _, results in self.runs]

    @property
    def files(self) -> list[str]:
        return [str(path) for path, _ in self.runs]

    def add(self, path: Path, results: dict) -> None:
        """Add one seed's run, refusing a repeated seed or a run of other settings."""
        for other_path, other in self.runs:
            if other.get("seed") == results.get("seed"):
                raise MoveError(
                    f"results files {other_path} and {path} are the same run (seed "
                    f"{results.get('seed')}): a cell averages one run per seed; pass one"
                )
            difference = settings_difference(other, results)
            if difference:
                raise MoveError(
                    f"results files {other_path} and {path} differ in {difference}: a cell "
                    "averages seeds of one setting; retrain one of them or table them apart"
                )
        self.runs.append((path, results))

    def stats(self, protocol: str, metric: str) -> tuple[float | None, float | None, int]:
        """(mean, sample std (None for one seed), n) of one metric under one protocol."""
        values = [results.get(protocol, {}).get(metric) for _, results in self.runs]
        values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        if not values:
            return None, None, 0
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        return float(np.mean(values)), std, len(values)


def seed_drawn_split(results: dict) -> bool:
    """True when the run's split was drawn by its own seed (``split.selection: random``, the
    workflow's ``splits/<d>_ir<IR>_seed<k>.csv`` with k the run's seed): such seeds train on
    other videos by design, the same number per class."""
    path = Path((results.get("split") or {}).get("path") or "")
    return path.name.endswith(f"_seed{results.get('seed')}.csv")


def run_identity(results: dict, seed_drawn: bool = False) -> dict:
    """What must be equal across the seeds of one cell: settings but the per-run ones, the
    features (their hash), the class groups, the split's shape and its train videos (their
    hash; ``seed_drawn``: splits drawn by each seed, their per-class train counts only). Results
    of an older move, without the split's identity, are compared by their train-video count."""
    settings = {k: v for k, v in results.get("settings", {}).items() if k not in PER_RUN_SETTINGS}
    settings.setdefault("precision", "float32")  # results written before the setting: float32
    split = results.get("split") or {}
    identity = {
        "settings": settings,
        "features": (results.get("features") or {}).get("sha256"),
        "groups": results.get("groups"),
        "n_classes": results.get("n_classes"),
        "n_test": results.get("n_test"),
        "n_train": results.get("n_train"),
        "split train counts": split.get("train_counts"),
    }
    if not seed_drawn:
        identity["split train videos"] = split.get("train_videos_sha256")
    return identity


def settings_difference(first: dict, second: dict) -> str:
    """The first setting two runs differ in beyond the seed ('' when none), e.g. 'settings.lr'."""
    seed_drawn = seed_drawn_split(first) and seed_drawn_split(second)
    a, b = run_identity(first, seed_drawn), run_identity(second, seed_drawn)
    for key in a:
        if key == "settings":
            for name in sorted(set(a[key]) | set(b[key])):
                if a[key].get(name) != b[key].get(name):
                    return f"settings.{name} ({a[key].get(name)!r} vs {b[key].get(name)!r})"
        elif a[key] != b[key]:
            if key.startswith("split") and None in (a[key], b[key]):
                continue  # a results file of an older move: its n_train is compared
            if key == "n_train":
                return f"n_train ({a[key]} vs {b[key]} train videos)"
            if key == "split train counts":
                return "the split's per-class train counts"
            if key == "split train videos":
                return "the split's train videos (another split: rebuild it once for every seed)"
            return key
    return ""


CellKey = tuple[str, float | None, str]  # backbone, imbalance ratio, variant


def gather(paths: Iterable[str | Path]) -> tuple[str | None, dict[CellKey, Cell]]:
    """(dataset, cells): the results files grouped by the run they record; one dataset only."""
    cells: dict[CellKey, Cell] = {}
    dataset_of: dict[str | None, Path] = {}
    for path in map(Path, paths):
        results = read_results(path)
        method, aggregators = run_variant(path, results)
        one_dataset(dataset_of, path, results)
        ratio = results.get("imbalance_ratio")
        key = (
            results.get("backbone") or "?",
            None if ratio is None else float(ratio),
            variant_of(method, aggregators),
        )
        cells.setdefault(key, Cell()).add(path, results)
    return next(iter(dataset_of), None), cells


def format_cell(
    mean: float | None, std: float | None, n: int, paper: float | None, n_all: int
) -> str:
    """``0.561 ± 0.004 (0.559; +0.5σ)``: mean ± std (no ± for one seed; n where it differs from
    the table's), the paper's number and (ours − paper) in our std (the raw difference without
    a std)."""
    if mean is None:
        return "–"
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")
    if n != n_all:
        text += f" (n={n})"
    if paper is not None:
        text += f" ({paper:.3f}; {difference(mean, std, paper)})"
    return text


def difference(mean: float, std: float | None, paper: float) -> str:
    """(ours − paper) in units of our std, or the raw difference where there is no std."""
    if std:
        return f"{(mean - paper) / std:+.1f}σ"
    return f"{mean - paper:+.3f}"


BACKBONE_ORDER = PAPER_ORDER  # the paper's blocks, left to right


def backbone_order(backbone: str) -> tuple[int, str]:
    """Sort key: the paper's order of backbones, then any other by name."""
    known = BACKBONE_ORDER.index(backbone) if backbone in BACKBONE_ORDER else len(BACKBONE_ORDER)
    return known, backbone


def paper_table(paths: Iterable[str | Path], rows: list[str]) -> tuple[str, pd.DataFrame]:
    """(markdown, long CSV table) of the paper's table over seeds: rows = ``rows`` (variants, in
    order), one block per protocol and backbone; columns IR × AP/ACC for a dataset with imbalance
    ratios (Table 3), All/H/M/T/A@1/A@5 for VideoLT (Tables 1-2)."""
    dataset, cells = gather(paths)
    missing = sorted({variant for _, _, variant in cells} - set(rows))
    if missing:
        raise MoveError(
            f"results of variant(s) {', '.join(missing)} are not among the table's rows "
            f"({', '.join(rows)}): add them to --rows (workflow: paper_table.rows)"
        )
    backbones = sorted({backbone for backbone, _, _ in cells}, key=backbone_order)
    ratios = sorted({ratio for _, ratio, _ in cells if ratio is not None})
    columns = (
        [
            (ratio, metric, f"IR {ratio:g} {name}")
            for ratio in ratios
            for metric, name in IR_METRICS.items()
        ]
        if ratios
        else [(None, metric, name) for metric, name in GROUP_METRICS.items()]
    )
    n_all = max((len(cell.runs) for cell in cells.values()), default=0)
    later = [variant for variant in rows if variant in extended_variants()]
    title = (
        "the paper's table and the long-tail baselines since 2020" if later else "the paper's table"
    )
    records, lines = [], [intro(dataset, cells, n_all, title)]
    for protocol, meaning in PROTOCOLS.items():
        for backbone in backbones:
            lines += [f"## {protocol}: {meaning} — {backbone}", ""]
            header = ["LT-Methods", "Agg", *[name for _, _, name in columns]]
            lines += ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(columns)]
            for variant in rows:
                if not any((backbone, ratio, variant) in cells for ratio, _, _ in columns):
                    continue
                method, aggregators = split_variant(variant, cells)
                cells_text = []
                for ratio, metric, _ in columns:
                    cell = cells.get((backbone, ratio, variant))
                    stats = cell.stats(protocol, metric) if cell else (None, None, 0)
                    paper = paper_result(dataset or "", backbone, method, aggregators, ratio)
                    paper_value = (paper or {}).get(metric)
                    cells_text.append(format_cell(*stats, paper_value, n_all))
                    if cell:
                        records.append(
                            record(
                                dataset,
                                backbone,
                                ratio,
                                variant,
                                protocol,
                                metric,
                                stats,
                                paper_value,
                                cell,
                            )
                        )
                label = [display_name(method), AGGREGATOR_MARK[aggregators]]
                lines.append("| " + " | ".join(label + cells_text) + " |")
            lines.append("")
    return "\n".join(lines), pd.DataFrame(records)


def split_variant(variant: str, cells: dict[CellKey, Cell]) -> tuple[str, bool]:
    """(method, aggregators) of a variant, as its runs record them."""
    for (_, _, cell_variant), cell in cells.items():
        if cell_variant == variant:
            return run_variant(cell.runs[0][0], cell.runs[0][1])
    raise MoveError(f"no results of variant '{variant}'")


def record(dataset, backbone, ratio, variant, protocol, metric, stats, paper, cell: Cell) -> dict:
    """One row of the long CSV: a cell's statistic, the paper's number, the files averaged."""
    mean, std, n = stats
    return {
        "dataset": dataset,
        "backbone": backbone,
        "imbalance_ratio": ratio,
        "variant": variant,
        "protocol": protocol,
        "metric": metric,
        "mean": mean,
        "std": std,
        "n": n,
        "seeds": " ".join(str(seed) for seed in sorted(cell.seeds)),
        "paper": paper,
        "difference_in_std": (mean - paper) / std
        if std and paper is not None and mean is not None
        else None,
        "files": " ".join(cell.files),
    }


def intro(
    dataset: str | None,
    cells: dict[CellKey, Cell],
    n_all: int,
    title: str = "the paper's table",
) -> str:
    """The heading (``title``: which table): the dataset, the seeds, how a cell
    reads, where the averaged files are."""
    seeds = sorted({seed for cell in cells.values() for seed in cell.seeds})
    leaked = sorted(
        {
            backbone
            for (backbone, ratio, _), cell in cells.items()
            for _, results in cell.runs
            if ratio is not None  # a Kinetics subset has drawn splits; VideoLT its own
            and kinetics_trained(backbone, str(results.get("features_weights")))
        }
    )
    warning = (
        f"**Warning: the {', '.join(leaked)} features come from Kinetics-400-trained weights, "
        "which saw every train video of this Kinetics subset with its label: these numbers do "
        "not measure long-tailed recognition.**\n\n"
        if leaked
        else ""
    )
    return (
        f"# {dataset}: {title} over seeds\n\n{warning}"
        f"Seeds {', '.join(map(str, seeds))}: each cell is the mean ± sample std (ddof 1) over "
        f"n = {n_all} seeds (marked where a cell has fewer), then in brackets the paper's number "
        "and (ours − paper) in units of our std (the raw difference for one seed). The CSV "
        "beside this file lists the results files each cell averaged.\n"
    )


def write_paper_table(
    paths: list[str | Path], rows: list[str], out_md: str | Path, out_csv: str | Path
) -> pd.DataFrame:
    """Write the paper's table over seeds as markdown and CSV (each via a temp file and rename)."""
    return write_tables(*paper_table(paths, rows), out_md, out_csv)


def ablation_marks(results: dict) -> dict[str, bool]:
    """Table 4's switches of a run: S-A, C-A (aggregators), Ex. (dynamic extrapolation with the
    DFS) and In. (calibrated interpolation), read from the settings it records (S-A and C-A
    where it records none: ``ModelSettings``' defaults)."""
    settings = results.get("settings", {})
    model, defaults = settings.get("model", {}), ModelSettings()
    aggregators = bool(settings.get("aggregators"))
    move = settings.get("move", {}) if settings.get("method") == "move" else {}
    return {
        "S-A": aggregators and bool(model.get("self_attentive", defaults.self_attentive)),
        "C-A": aggregators and bool(model.get("codebook_attentive", defaults.codebook_attentive)),
        "Ex.": bool(move.get("extrapolation")) and bool(move.get("dfs")),
        "In.": bool(move.get("interpolation")),
    }


def ablation_table(rows: dict[str, list[str | Path]]) -> tuple[str, pd.DataFrame]:
    """(markdown, long CSV) of Table 4 over seeds: ``rows`` maps a row (a-g) to its seeds'
    results files; each file must carry the row's switches (``ABLATION_ROWS``)."""
    from move.training.settings import ABLATION_ROWS

    dataset, backbone, cells = None, None, {}
    for row, paths in rows.items():
        if row not in ABLATION_ROWS:
            raise MoveError(f"unknown ablation row '{row}': choose from {', '.join(ABLATION_ROWS)}")
        expected = ablation_marks({"settings": expected_settings(ABLATION_ROWS[row])})
        cell = Cell()
        for path in map(Path, paths):
            results = read_results(path)
            if ablation_marks(results) != expected:
                raise MoveError(
                    f"results file {path} is not row ({row}) of Table 4 (its switches "
                    f"{ablation_marks(results)}, the row's {expected}): pass it as its own row"
                )
            for name, value in (("dataset", dataset), ("backbone", backbone)):
                if value is not None and results.get(name) != value:
                    raise MoveError(
                        f"results file {path} is of {name} {results.get(name)}, the others of "
                        f"{value}: an ablation table is one dataset's features of one backbone"
                    )
            dataset, backbone = results.get("dataset"), results.get("backbone")
            cell.add(path, results)
        cells[row] = cell
    n_all = max((len(cell.runs) for cell in cells.values()), default=0)
    seeds = sorted({seed for cell in cells.values() for seed in cell.seeds})
    lines = [
        f"# {dataset} ({backbone}): Table 4's ablation over seeds\n",
        f"Seeds {', '.join(map(str, seeds))}; cells as in the paper table (mean ± std over "
        f"n = {n_all}; the paper's number and the difference in our std where the paper has "
        "the run: VideoLT, ResNet-101).\n",
    ]
    records = []
    for protocol, meaning in PROTOCOLS.items():
        lines += [f"## {protocol}: {meaning}", ""]
        header = ["", "S-A", "C-A", "Ex.", "In.", *GROUP_METRICS.values()]
        lines += ["| " + " | ".join(header) + " |", "|---|---|---|---|---|" + "---:|" * 6]
        for row, cell in cells.items():
            marks = ablation_marks(cell.runs[0][1])
            paper = paper_ablation(dataset or "", backbone or "", row) or {}
            texts = []
            for metric in GROUP_METRICS:
                stats = cell.stats(protocol, metric)
                texts.append(format_cell(*stats, paper.get(metric), n_all))
                records.append(
                    record(
                        dataset,
                        backbone,
                        None,
                        row,
                        protocol,
                        metric,
                        stats,
                        paper.get(metric),
                        cell,
                    )
                )
            mark_cells = ["✓" if marks[name] else "" for name in ("S-A", "C-A", "Ex.", "In.")]
            lines.append("| " + " | ".join([f"({row})", *mark_cells, *texts]) + " |")
        lines.append("")
    table = pd.DataFrame(records).rename(columns={"variant": "row"})
    return "\n".join(lines), table


def expected_settings(switches: dict) -> dict:
    """A row's switches in the shape results record settings (model keys under ``model``); a
    switch the row leaves out keeps its default (``TrainSettings``, ``ModelSettings``)."""
    aggregators = switches.get("aggregators", TrainSettings.aggregators)
    settings = {"method": switches.get("method"), "aggregators": aggregators}
    settings["model"] = {
        key: switches[key] for key in ("self_attentive", "codebook_attentive") if key in switches
    }
    settings["move"] = switches.get("move", {})
    return settings


def write_ablation_table(
    rows: dict[str, list[str | Path]], out_md: str | Path, out_csv: str | Path
) -> pd.DataFrame:
    """Write Table 4 over seeds as markdown and CSV (each via a temp file and rename)."""
    return write_tables(*ablation_table(rows), out_md, out_csv)


def write_tables(
    markdown: str, table: pd.DataFrame, out_md: str | Path, out_csv: str | Path
) -> pd.DataFrame:
    """Write a table over seeds as markdown and CSV (each via a temp file and rename)."""
    write_text_atomic(table.to_csv(index=False), out_csv)
    write_text_atomic(markdown, out_md)
    return table
