"""The table registry: what a table is (``Table``), what its drawing function receives
(``TableInputs``), how it is registered, and the registry as it stands (``tables``).

A table is data, the way methods and backbones are: its name (``results/<dataset>_<name>.md`` and
``.csv``, ``move draw-table <name>``), the workflow rule drawing it, its title, which runs, rows
(variants) and seeds it reads, named so that planning (``move.table_planning``) computes its input
files, the function drawing it and the paper's numbers it sits beside.

This module declares no table: the built-in ones are declared in
``move.reporting.table_declarations``, tables of other packages register through the entry-point
group ``move.tables`` (an entry point names a ``Table``). Read the registry through
``move.reporting.table_declarations.tables``, which loads both first. No pandas here: planning
lists the tables.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from move import layout

ENTRY_POINT_GROUP = "move.tables"

# The runs a table reads, by name (planning turns each into run names for a dataset).
RUNS = {
    "table_run": "the dataset's configured backbone at its table IR (VideoLT: none)",
    "every_run": "every backbone of the dataset at every imbalance ratio (VideoLT: every backbone "
    "of its features)",
    "ablation_run": "the dataset's ablation backbone at its table IR (VideoLT: its "
    "`ablation_backbone`)",
    "main_results": "the main result of each imbalance ratio, `results/<dataset>_ir<IR>.json` "
    "(the configured backbone, method and seed; rows and seeds are not read)",
}
# The rows a table shows, by name; a tuple of variant names is also a table's rows.
ROWS = {
    "table_methods": "config key `table.methods` (default: every variant)",
    "paper": "the paper's rows of the dataset (config key `paper_table.rows`: `paper`, `all` or "
    "a list)",
    "extended": "the paper's rows, then the long-tail baselines since 2020 with and without "
    "aggregators",
    "ablation": "Table 4's rows (a)-(g), each the variant that trains it",
}
SEEDS = {"seed": "config key `seed`", "seeds": "every seed of config key `seeds`"}


@dataclass(frozen=True)
class TableInputs:
    """What a table's drawing function receives: its (row, results file) pairs in the order
    planning lists them (run, then row, then seed), the files to write and the heading."""

    results: tuple[tuple[str, str], ...]
    out_md: str
    out_csv: str | None = None
    title: str = ""

    def rows(self) -> list[str]:
        """The rows, each once, in their first file's order."""
        return list(dict.fromkeys(row for row, _ in self.results))

    def paths(self) -> list[str]:
        return [path for _, path in self.results]

    def by_row(self) -> dict[str, list[str]]:
        """{row: its files} (a row's seeds, of each run)."""
        grouped: dict[str, list[str]] = {}
        for row, path in self.results:
            grouped.setdefault(row, []).append(path)
        return grouped


# (inputs) -> the line `move draw-table` prints after writing the table's files
Draw = Callable[[TableInputs], str]


@dataclass(frozen=True)
class Table:
    """One table: ``name`` (``results/<dataset>_<name>.md``), ``rule`` (the workflow rule; default
    ``<name>_table``), ``title`` (one line: docs and the job's message), ``draw`` (writes the
    files), which ``runs`` / ``rows`` / ``seeds`` it reads (keys of ``RUNS``, ``ROWS`` or a tuple
    of variants, ``SEEDS``), whether it writes a CSV beside the markdown, whether only datasets
    with imbalance ratios have it, ``heading`` (a format string of ``dataset``, ``backbone``,
    ``ir`` and ``seed`` handed over as the title; empty: none), ``paper`` (the paper's numbers it
    sits beside, in words) and the job's memory in MB."""

    name: str
    title: str
    draw: Draw
    runs: str = "table_run"
    rows: str | tuple[str, ...] = "table_methods"
    seeds: str = "seeds"
    rule: str = ""
    csv: bool = True
    needs_imbalance_ratios: bool = False
    heading: str = ""
    paper: str = ""
    mem_mb: int = 2000

    @property
    def rule_name(self) -> str:
        return self.rule or f"{self.name}_table"

    def outputs(self, dataset: str) -> dict[str, str]:
        """{'md': ..., 'csv': ...} of ``dataset`` (a name or a ``{wildcard}``)."""
        formats = ("md", "csv") if self.csv else ("md",)
        return {
            suffix: layout.TABLE.format(dataset=dataset, table=self.name, format=suffix)
            for suffix in formats
        }


_REGISTRY: dict[str, Table] = {}
_MODULES: dict[str, str] = {}  # table name -> the module that declared it


def register_table(table: Table, module: str | None = None) -> Table:
    """Add a table (its name new, lower-case letters and digits: it is a file-name suffix).
    ``module``: where it is declared (default: the calling module)."""
    if not re.fullmatch(r"[a-z][a-z0-9]*", table.name):
        raise ValueError(f"table name {table.name!r}: use lower-case letters and digits")
    if table.name in _REGISTRY:
        raise ValueError(f"table {table.name!r} is already registered")
    unknown = [
        f"{kind} {value!r}"
        for kind, value, known in (("runs", table.runs, RUNS), ("seeds", table.seeds, SEEDS))
        if value not in known
    ]
    if isinstance(table.rows, str) and table.rows not in ROWS:
        unknown.append(f"rows {table.rows!r}")
    if unknown:
        raise ValueError(f"table {table.name!r}: unknown {', '.join(unknown)}")
    _REGISTRY[table.name] = table
    _MODULES[table.name] = module or sys._getframe(1).f_globals.get("__name__", "")
    return table


def unregister_table(name: str) -> None:
    """Remove a table (tests that register an example table clean up with this)."""
    _REGISTRY.pop(name, None)
    _MODULES.pop(name, None)


def declaring_module(name: str) -> str:
    return _MODULES.get(name, "")


def registered() -> dict[str, Table]:
    """The registry as it stands (``move.reporting.table_declarations.tables`` loads the built-in
    and the entry points' tables into it first)."""
    return _REGISTRY
