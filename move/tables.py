"""Table-3-style methods tables: one row per method (± aggregators) from results JSON files.

Method variants are named ``<method>`` (frame-wise classifier, no aggregators) or
``<method>_agg`` (with PSA + codebook aggregators); ``move`` always uses the aggregators. This
module imports no torch so that the workflow can use it while parsing rules.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from move.errors import MoveError
from move.files import read_json_input, write_text_atomic

BASE_METHODS = ("plain", "ldam_drw", "eql", "cbs", "cb_loss", "mixup", "framestack", "move")
DISPLAY = {
    "plain": "Baseline",
    "ldam_drw": "LDAM-DRW",
    "eql": "EQL",
    "cbs": "CBS",
    "cb_loss": "CB Loss",
    "mixup": "Mixup",
    "framestack": "Framestack",
    "move": "MOVE (ours)",
}
AGGREGATOR_MARK = {True: "✓", False: "✗"}  # Table 3's "Agg" column
VARIANTS = tuple(v for m in BASE_METHODS for v in ((m,) if m == "move" else (m, f"{m}_agg")))
METRIC_COLUMNS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")


def variant_settings(variant: str) -> dict:
    """``'cb_loss_agg'`` -> ``{'method': 'cb_loss', 'aggregators': True}``; unknown -> MoveError."""
    if variant not in VARIANTS:
        raise MoveError(f"unknown method variant '{variant}': choose from {', '.join(VARIANTS)}")
    if variant == "move":
        return {"method": "move", "aggregators": True}
    if variant.endswith("_agg"):
        return {"method": variant[: -len("_agg")], "aggregators": True}
    return {"method": variant, "aggregators": False}


def methods_table(results: dict[str, str | Path]) -> pd.DataFrame:
    """One row per variant (in the given order): final-epoch metrics, best mAP and its epoch."""
    rows = []
    for variant, path in results.items():
        path = Path(path)
        if not path.is_file():
            raise MoveError(f"results file {path} not found: train method '{variant}' first")
        data = read_json_input(path, "results file", "delete it and train it again")
        settings = variant_settings(variant)
        row = {
            "method": DISPLAY[settings["method"]],
            "agg": AGGREGATOR_MARK[settings["aggregators"]],
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


IR_IN_NAME = re.compile(r"_ir(?P<ir>[0-9]*\.?[0-9]+)\.json$")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _row_name(results: dict) -> tuple[str, str]:
    """(method, Agg mark) from a results JSON's settings, as Table 3 labels its rows."""
    settings = results.get("settings", {})
    name = str(settings.get("method", "?"))
    aggregators = settings.get("model", {}).get("aggregators", settings.get("aggregators"))
    return DISPLAY.get(name, name), AGGREGATOR_MARK[bool(aggregators)]


def imbalance_table(paths: list[str | Path]) -> str:
    """Table-3-style markdown: one row per method, AP (mAP) and ACC (top-1) per imbalance ratio.

    The imbalance ratio of each file comes from its name (``..._ir<IR>.json``); final-epoch
    metrics are shown (the headline), then a second table with mAP over all / head / medium /
    tail classes per ratio, and the best-epoch mAP.
    """
    runs: dict[tuple[str, str], dict[float, dict]] = {}
    for path in map(Path, paths):
        match = IR_IN_NAME.search(path.name)
        if match is None:
            raise MoveError(f"results file {path} is not named <dataset>_ir<IR>.json")
        if not path.is_file():
            raise MoveError(f"results file {path} not found: train it first (move train)")
        results = read_json_input(path, "results file", "delete it and train it again")
        runs.setdefault(_row_name(results), {})[float(match["ir"])] = results
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
