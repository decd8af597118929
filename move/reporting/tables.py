"""Table-3-style methods tables: one row per method (± aggregators) from results JSON files.

Rows are the method registry's variants (``move.training.methods``): ``<method>`` (frame-wise
classifier, no aggregators) or ``<method>_agg`` (with PSA + codebook aggregators); a method that
needs the aggregators (MOVE) has only ``<method>``. Method, Agg mark, dataset and imbalance ratio
come from each results JSON, display names from the registry; no file name is parsed. The
paper's own numbers (``move.reporting.paper``) stand beside ours where the paper has the same run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from move.errors import MoveError
from move.files import write_text_atomic
from move.reporting.paper import paper_result
from move.training.methods import get_method, variant_names, variant_of
from move.training.results import read_results

AGGREGATOR_MARK = {True: "✓", False: "✗"}  # Table 3's "Agg" column
METRIC_COLUMNS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")
METHODS_TABLE_NOTE = (
    "mAP ... top5: the final epoch (the honest headline); best_mAP: the best evaluation (the "
    "paper's protocol); paper_mAP: the paper's number for the same benchmark, backbone, method "
    "and ratio (its best evaluation; '-' where the paper has no such run)."
)


def run_variant(path: str | Path, results: dict) -> tuple[str, bool]:
    """(method, aggregators) a results JSON records."""
    settings = results.get("settings", {})
    method = results.get("method", settings.get("method"))
    aggregators = results.get("aggregators", settings.get("aggregators"))
    if method is None or aggregators is None:
        raise MoveError(
            f"results file {path} records no method/aggregators: retrain it (move train)"
        )
    return str(method), bool(aggregators)


def display_name(method: str) -> str:
    """The registry's display name of a method (an unregistered one keeps its name)."""
    try:
        return get_method(method).display
    except MoveError:
        return method


def paper_numbers(results: dict, method: str, aggregators: bool) -> dict | None:
    """The paper's metrics for the run a results JSON records (its dataset, backbone and
    imbalance ratio); None where the paper has no such run."""
    dataset, backbone = results.get("dataset") or "", results.get("backbone") or ""
    return paper_result(dataset, backbone, method, aggregators, results.get("imbalance_ratio"))


def methods_table(results: dict[str, str | Path]) -> pd.DataFrame:
    """One row per variant (in the given order): final-epoch metrics, best mAP and its epoch.

    ``results`` maps the row's variant to its results JSON; a JSON of another variant is refused.
    """
    rows = []
    for variant, path in results.items():
        if variant not in variant_names():
            raise MoveError(
                f"unknown method variant '{variant}': choose from {', '.join(variant_names())}"
            )
        if not Path(path).is_file():
            raise MoveError(f"results file {path} not found: train method '{variant}' first")
        data = read_results(path)
        method, aggregators = run_variant(path, data)
        if variant_of(method, aggregators) != variant:
            raise MoveError(
                f"results file {path} holds variant '{variant_of(method, aggregators)}', not "
                f"'{variant}': pass it as {variant_of(method, aggregators)}={path}"
            )
        row = {
            "method": display_name(method),
            "agg": AGGREGATOR_MARK[aggregators],
            "variant": variant,
        }
        row |= {key: data["final"].get(key) for key in METRIC_COLUMNS}
        row["final_epoch"] = data["final"]["epoch"]
        row["best_mAP"] = data["best"]["mAP"]
        row["best_epoch"] = data["best"]["epoch"]
        paper = paper_numbers(data, method, aggregators)
        row["paper_mAP"] = None if paper is None else paper["mAP"]
        row["seed"] = data.get("seed")
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, title: str = "") -> str:
    """A GitHub markdown table, metrics with 3 decimals (missing groups shown as '-')."""
    columns = list(table.columns)
    lines = [f"{title}\n" if title else ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append(
        "|" + "|".join("---" if c in ("method", "variant") else "---:" for c in columns) + "|"
    )
    for _, row in table.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if value is None or (isinstance(value, float) and pd.isna(value)):
                cells.append("-")
            elif isinstance(value, float):
                cells.append(f"{value:.3f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(line for line in lines if line is not None).lstrip("\n") + "\n"


def write_methods_table(
    results: dict[str, str | Path], out_md: str | Path, out_csv: str | Path, title: str = ""
) -> pd.DataFrame:
    """Write the table as CSV and markdown (each via a temporary file and rename)."""
    table = methods_table(results)
    write_text_atomic(table.to_csv(index=False), out_csv)
    write_text_atomic(to_markdown(table, title) + "\n" + METHODS_TABLE_NOTE + "\n", out_md)
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def imbalance_ratio(path: str | Path, results: dict) -> float:
    """The run's imbalance ratio, as ``move train --imbalance-ratio`` recorded it."""
    ratio = results.get("imbalance_ratio")
    if ratio is None:
        raise MoveError(
            f"results file {path} records no imbalance_ratio: retrain it with "
            "'move train --imbalance-ratio' (the workflow passes it)"
        )
    return float(ratio)


PROTOCOLS = (
    ("paper", "the paper's Table 3 (its best evaluation)"),
    ("best", "this run's best evaluation (every eval_every epochs: the paper's protocol)"),
    ("final", "this run's last epoch (the honest headline)"),
)
Row = tuple[str, str, str]  # display name, Agg mark, backbone


def one_dataset(datasets: dict[str | None, Path], path: Path, results: dict) -> None:
    """Record the dataset of ``path`` in ``datasets`` (dataset -> first file); a second dataset
    is refused, naming a file of each (one table per dataset)."""
    datasets.setdefault(results.get("dataset"), path)
    if len(datasets) > 1:
        (first, first_path), (other, _) = list(datasets.items())[:2]
        raise MoveError(
            f"results files {first_path} (dataset {first}) and {path} (dataset {other}) are "
            "of different datasets: make one table per dataset"
        )


def collect_runs(paths: list[str | Path]) -> dict[Row, dict[float, dict]]:
    """Results by table row and imbalance ratio.

    Refuses two runs of one row at one ratio (a table shows one run per cell) and runs of
    different datasets (one table per dataset), naming the files.
    """
    runs: dict[Row, dict[float, dict]] = {}
    where: dict[tuple[Row, float], Path] = {}
    datasets: dict[str | None, Path] = {}
    for path in map(Path, paths):
        results = read_results(path)
        method, aggregators = run_variant(path, results)
        one_dataset(datasets, path, results)
        row = (display_name(method), AGGREGATOR_MARK[aggregators], results.get("backbone") or "?")
        ratio = imbalance_ratio(path, results)
        if (row, ratio) in where:
            raise MoveError(
                f"results files {where[row, ratio]} and {path} are both {row[0]} {row[1]} on "
                f"{row[2]} at IR {ratio:g}: a table shows one run per method and ratio; pass one"
            )
        where[row, ratio] = path
        runs.setdefault(row, {})[ratio] = results | {"method": method, "aggregators": aggregators}
    return runs


def protocol_cells(
    protocol: str, by_ir: dict[float, dict], ratios: list[float]
) -> list[str] | None:
    """AP and ACC per ratio of one row under one protocol; None for a paper row with no numbers."""
    cells = []
    for ratio in ratios:
        results = by_ir.get(ratio)
        if results is None:
            metrics = {}
        elif protocol == "paper":
            metrics = paper_numbers(results, results["method"], results["aggregators"]) or {}
        else:
            metrics = results.get(protocol, {})
        cells += [_fmt(metrics.get("mAP")), _fmt(metrics.get("top1"))]
    if protocol == "paper" and all(cell == "–" for cell in cells):
        return None
    return cells


def imbalance_table(paths: list[str | Path]) -> str:
    """Table-3-style markdown: rows per method, AP (mAP) and ACC (top-1) per imbalance ratio.

    Each method has up to three labelled rows: the paper's numbers (where the paper has the run:
    same benchmark, backbone, method and ratio), this run's best evaluation (the paper's
    protocol) and its final epoch. A second table gives the final epoch's mAP over all / head /
    medium / tail classes per ratio. The ratio of each run is the one its results JSON records.
    """
    runs = collect_runs(paths)
    ratios = sorted({ir for by_ir in runs.values() for ir in by_ir})
    header = ["LT-Methods", "Agg", "Backbone", "mAP of"]
    header += [f"IR {ir:g} {m}" for ir in ratios for m in ("AP", "ACC")]
    lines = ["; ".join(f"{name}: {meaning}" for name, meaning in PROTOCOLS) + ".", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, by_ir in sorted(runs.items()):
        for protocol, _ in PROTOCOLS:
            cells = protocol_cells(protocol, by_ir, ratios)
            if cells is not None:
                lines.append("| " + " | ".join([*row, protocol, *cells]) + " |")
    return "\n".join(lines + ["", group_table(runs, ratios)])


def group_table(runs: dict[Row, dict[float, dict]], ratios: list[float]) -> str:
    """Final-epoch mAP over all / head / medium / tail classes and accuracy, per row and ratio."""
    header = ["LT-Methods", "Agg", "Backbone", "IR", "All", "H", "M", "T", "A@1", "A@5"]
    lines = ["Final epoch by class group:", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, by_ir in sorted(runs.items()):
        for ir in ratios:
            if ir not in by_ir:
                continue
            final = by_ir[ir].get("final", {})
            keys = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")
            cells = [*row, f"{ir:g}"] + [_fmt(final.get(k)) for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
