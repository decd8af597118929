"""Table-3-style methods tables: one row per method (± aggregators) from results JSON files.

Rows are the method registry's variants (``move.training.registry``): ``<method>`` (frame-wise
classifier, no aggregators) or ``<method>_agg`` (with PSA + codebook aggregators); a method that
needs the aggregators (MOVE) has only ``<method>``. Method, Agg mark, dataset and imbalance ratio
come from each results JSON, display names from the registry; no file name is parsed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from move.errors import MoveError
from move.files import write_text_atomic
from move.training.artefacts import read_results
from move.training.registry import get_method, variant_names, variant_of

AGGREGATOR_MARK = {True: "✓", False: "✗"}  # Table 3's "Agg" column
METRIC_COLUMNS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")


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
    write_text_atomic(to_markdown(table, title), out_md)
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


def imbalance_table(paths: list[str | Path]) -> str:
    """Table-3-style markdown: one row per method, AP (mAP) and ACC (top-1) per imbalance ratio.

    The imbalance ratio of each run is the one its results JSON records; final-epoch metrics
    are shown (the headline), then a second table with mAP over all / head / medium / tail
    classes per ratio, and the best-epoch mAP.
    """
    runs: dict[tuple[str, str], dict[float, dict]] = {}
    for path in map(Path, paths):
        results = read_results(path)
        method, aggregators = run_variant(path, results)
        row = (display_name(method), AGGREGATOR_MARK[aggregators])
        runs.setdefault(row, {})[imbalance_ratio(path, results)] = results
    ratios = sorted({ir for by_ir in runs.values() for ir in by_ir})
    header = ["LT-Methods", "Agg"] + [f"IR {ir:g} {m}" for ir in ratios for m in ("AP", "ACC")]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for (method, agg), by_ir in sorted(runs.items()):
        cells = [method, agg]
        for ir in ratios:
            final = by_ir.get(ir, {}).get("final", {})
            cells += [_fmt(final.get("mAP")), _fmt(final.get("top1"))]
        lines.append("| " + " | ".join(cells) + " |")
    detail_header = ["LT-Methods", "Agg", "IR", "All", "H", "M", "T", "A@1", "A@5", "best mAP"]
    lines += ["", "| " + " | ".join(detail_header) + " |", "|" + "---|" * len(detail_header)]
    for (method, agg), by_ir in sorted(runs.items()):
        for ir in ratios:
            if ir not in by_ir:
                continue
            final, best = by_ir[ir].get("final", {}), by_ir[ir].get("best", {})
            cells = [method, agg, f"{ir:g}"] + [
                _fmt(final.get(k)) for k in ("mAP", "head_mAP", "medium_mAP", "tail_mAP")
            ]
            cells += [_fmt(final.get("top1")), _fmt(final.get("top5"))]
            cells.append(f"{_fmt(best.get('mAP'))} (epoch {best.get('epoch', '?')})")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
