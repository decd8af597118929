"""Every built-in table, declared (``move.reporting.registry.Table``): the methods table, the
imbalance-ratio table, the paper's table over seeds, the extended table and Table 4's ablation;
and the registry as read (``tables``, ``get_table``): these, then the tables of other packages'
``move.tables`` entry points.

Each declaration names what the table reads (runs, rows, seeds: planning computes the files) and
the function drawing it; the drawing functions here only hand the planned files to the reporting
code (``move.reporting.tables``, ``move.reporting.seeds``), imported when a table is drawn.
"""

from __future__ import annotations

from move.errors import MoveError
from move.plugins import loaded_entry_points
from move.reporting.registry import (
    ENTRY_POINT_GROUP,
    Table,
    TableInputs,
    register_table,
    registered,
)

_LOADED = False  # the entry points' tables are loaded once


def draw_methods_table(inputs: TableInputs) -> str:
    """One row per variant of one run and seed (``move table``)."""
    from move.reporting.tables import write_methods_table

    table = write_methods_table(
        dict(inputs.results), inputs.out_md, inputs.out_csv or "", inputs.title
    )
    return f"wrote {inputs.out_md} and {inputs.out_csv}: {len(table)} methods"


def draw_imbalance_table(inputs: TableInputs) -> str:
    """The main result at every imbalance ratio (``move imbalance-table``)."""
    from move.files import write_text_atomic
    from move.reporting.tables import imbalance_table

    write_text_atomic(imbalance_table(inputs.paths()), inputs.out_md)
    return f"wrote {inputs.out_md} from {len(inputs.results)} result file(s)"


def draw_paper_table(inputs: TableInputs) -> str:
    """The rows over seeds with the paper's numbers beside (``move paper-table``)."""
    from move.reporting.seeds import write_paper_table

    table = write_paper_table(inputs.paths(), inputs.rows(), inputs.out_md, inputs.out_csv or "")
    cells = (
        table.drop_duplicates(["backbone", "imbalance_ratio", "variant"]) if len(table) else table
    )
    return (
        f"wrote {inputs.out_md} and {inputs.out_csv}: {len(cells)} cells from "
        f"{len(inputs.results)} result file(s)"
    )


def draw_ablation_table(inputs: TableInputs) -> str:
    """Table 4's rows over seeds (``move ablation-table``)."""
    from move.reporting.seeds import write_ablation_table

    rows = inputs.by_row()
    write_ablation_table(rows, inputs.out_md, inputs.out_csv or "")
    return f"wrote {inputs.out_md} and {inputs.out_csv}: rows {', '.join(rows)}"


METHODS = register_table(
    Table(
        name="table",
        rule="methods_table",
        title="Methods table: every variant of one run and seed, final-epoch metrics",
        draw=draw_methods_table,
        runs="table_run",
        rows="table_methods",
        seeds="seed",
        needs_imbalance_ratios=True,
        heading="{dataset}, {backbone}, IR {ir}, seed {seed}: final-epoch metrics",
        paper="Table 3 / Tables 1-2 (the paper's mAP of the same run, where it has one)",
        mem_mb=1000,
    )
)
IMBALANCE = register_table(
    Table(
        name="all",
        rule="imbalance_table",
        title="The main result at every imbalance ratio (Table 3's layout)",
        draw=draw_imbalance_table,
        runs="main_results",
        seeds="seed",
        csv=False,
        needs_imbalance_ratios=True,
        paper="Table 3 (Imbalanced-MiniKinetics200 at IR 0.01-0.1)",
        mem_mb=1000,
    )
)
PAPER = register_table(
    Table(
        name="paper",
        title="The paper's table over seeds (Table 3; VideoLT: Tables 1-2)",
        draw=draw_paper_table,
        runs="every_run",
        rows="paper",
        seeds="seeds",
        paper="Table 3 (Imbalanced-MiniKinetics200), Tables 1-2 (VideoLT)",
    )
)
EXTENDED = register_table(
    Table(
        name="extended",
        title="The paper's table and the long-tail baselines since 2020, over seeds",
        draw=draw_paper_table,
        runs="every_run",
        rows="extended",
        seeds="seeds",
        paper="Table 3 / Tables 1-2 for the paper's rows; none for the later baselines",
    )
)
ABLATION = register_table(
    Table(
        name="ablation",
        title="Table 4's ablation over seeds, rows (a)-(g)",
        draw=draw_ablation_table,
        runs="ablation_run",
        rows="ablation",
        seeds="seeds",
        paper="Table 4 (VideoLT, ResNet-101)",
    )
)


def tables() -> dict[str, Table]:
    """Every table: the built-in ones, then those of other packages' ``move.tables`` entry
    points (loaded once), then any registered since."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for entry, loaded in loaded_entry_points(ENTRY_POINT_GROUP, "table"):
            if not isinstance(loaded, Table):
                raise MoveError(
                    f"table entry point '{entry.name} = {entry.value}' (group "
                    f"{ENTRY_POINT_GROUP}) names a {type(loaded).__name__}, not a Table"
                )
            if loaded.name not in registered():
                register_table(loaded, entry.value.split(":")[0])
    return registered()


def get_table(name: str) -> Table:
    """A table by name; unknown -> one line listing the known ones."""
    known = tables()
    if name not in known:
        raise MoveError(f"unknown table '{name}': choose one of {', '.join(known)}")
    return known[name]
