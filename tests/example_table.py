"""An example table, in one declaration: what adding a table takes.

The tail mAP of the baseline and MOVE on the dataset's table run, one line per seed (the spread a
mean hides). Saved in ``move/reporting/table_declarations.py`` it would be built in; here the
tests register it (``register_table(TAIL)``), and ``tests/test_table_registry.py`` installs it
as an out-of-tree plugin through the ``move.tables`` entry point, then plans it through the
workflow and draws it with ``move draw-table tail``.
"""

from __future__ import annotations

import json

from move.files import write_text_atomic
from move.reporting.registry import Table, TableInputs


def draw_tail_table(inputs: TableInputs) -> str:
    """One line per (row, results file): its seed and final-epoch tail mAP, as markdown and CSV."""
    lines = [f"# {inputs.title}", "", "| row | seed | tail mAP |", "|---|---:|---:|"]
    csv = ["row,seed,tail_mAP,file"]
    for row, path in inputs.results:
        with open(path) as handle:
            results = json.load(handle)
        seed, tail = results["seed"], results["final"]["tail_mAP"]
        lines.append(f"| {row} | {seed} | {tail:.3f} |")
        csv.append(f"{row},{seed},{tail},{path}")
    write_text_atomic("\n".join(lines) + "\n", inputs.out_md)
    write_text_atomic("\n".join(csv) + "\n", inputs.out_csv or "")
    return f"wrote {inputs.out_md} and {inputs.out_csv}: {len(inputs.results)} lines"


TAIL = Table(
    name="tail",
    title="Tail mAP of the baseline and MOVE at every seed",
    draw=draw_tail_table,
    runs="table_run",
    rows=("plain", "move"),
    seeds="seeds",
    needs_imbalance_ratios=True,
    heading="{dataset}, {backbone}, IR {ir}: tail mAP per seed",
    paper="none",
)
