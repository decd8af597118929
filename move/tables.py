"""Result tables: results JSONs gathered into markdown tables laid out like the paper's.

Reads ``results/<dataset>_ir<IR>.json`` files written by ``move train``; writes markdown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from move.errors import MoveError

IR_IN_NAME = re.compile(r"_ir(?P<ir>[0-9]*\.?[0-9]+)\.json$")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _row_name(results: dict) -> tuple[str, str]:
    """(method, Agg mark) from a results JSON's settings, as Table 3 labels its rows."""
    settings = results.get("settings", {})
    name = str(settings.get("method", "?"))
    method = {"move": "MOVE", "plain": "Baseline"}.get(name, name)
    aggregators = settings.get("model", {}).get("aggregators", settings.get("aggregators"))
    return method, "✓" if aggregators else "✗"


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
        results = json.loads(path.read_text())
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
