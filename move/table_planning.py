"""Table planning, above the stages: the result files a declared table of a dataset reads
(``plan_table``), from its declaration (``move.reporting.registry``) and the resolved config.

The workflow's table rules (``workflow/rules/report.smk``) take their inputs and the arguments of
``move draw-table`` from here; ``table_runs`` is the one place where a table's runs depend on
the dataset's data source.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from move import layout
from move.errors import MoveError
from move.planning import (
    Resolved,
    RunSettings,
    ablation_variants,
    run_name,
    run_settings,
)
from move.reporting.registry import Table
from move.reporting.table_declarations import get_table, tables


@dataclass(frozen=True)
class TablePlan:
    """One table of one dataset as planned: its (row, results file) pairs, in the order the
    table reads them (run, then row, then seed), and its heading."""

    table: Table
    dataset: str
    results: tuple[tuple[str, str], ...]
    title: str = ""

    @property
    def inputs(self) -> list[str]:
        return [path for _, path in self.results]

    @property
    def arguments(self) -> str:
        """The ``ROW=PATH`` pairs and ``--title`` of ``move draw-table``, quoted for a shell."""
        words = [shlex.quote(f"{row}={path}") for row, path in self.results]
        if self.title:
            words += ["--title", shlex.quote(self.title)]
        return " ".join(words)


def table_runs(resolved: Resolved, table: Table, dataset: str) -> list[RunSettings]:
    """The runs (``table.runs``) a table of ``dataset`` reads: each backbone at each imbalance
    ratio, or one run; a dataset that comes with its own split (its source has no imbalance
    ratios, e.g. VideoLT) has runs without IR and no table that needs imbalance ratios."""
    if dataset not in resolved.datasets:
        raise MoveError(
            f"table results/{dataset}_{table.name}.md: dataset '{dataset}' is not configured "
            f"(config key 'datasets' has {', '.join(resolved.datasets)})"
        )
    entry = resolved.datasets[dataset]
    if not entry.source.imbalance_ratios:
        if table.needs_imbalance_ratios or table.runs in ("table_run", "main_results"):
            raise MoveError(
                f"table '{table.name}' is of a dataset with imbalance ratios; {dataset} comes "
                "with its own split (its tables: " + ", ".join(t.name for t in tables().values()
                if not t.needs_imbalance_ratios) + ")"
            )  # fmt: skip
        backbones = [entry.ablation_backbone] if table.runs == "ablation_run" else entry.backbones
        return [run_settings(resolved, run_name(dataset, b)) for b in backbones]
    if table.runs == "every_run":
        pairs = [(b, ir) for b in entry.backbones for ir in entry.imbalance_ratios]
    elif table.runs == "ablation_run":
        pairs = [(entry.ablation_backbone, entry.table_ir)]
    else:  # table_run; main_results reads the main run of each IR (see ``plan_table``)
        pairs = [(entry.backbone, entry.table_ir)]
    return [run_settings(resolved, run_name(dataset, b, ir)) for b, ir in pairs]


def table_rows(resolved: Resolved, table: Table, dataset: str, run: RunSettings) -> dict[str, str]:
    """{row: the variant training it} of a table (``table.rows``) on ``run``."""
    from move.reporting.paper import paper_rows
    from move.training.methods import extended_variants, variant_names

    if not isinstance(table.rows, str):
        return {variant: variant for variant in table.rows}
    if table.rows == "table_methods":
        return {variant: variant for variant in resolved.table_methods}
    if table.rows == "ablation":
        return ablation_variants(run.train)
    if isinstance(resolved.paper_rows, tuple):
        rows = list(resolved.paper_rows)
    else:
        rows = list(variant_names() if resolved.paper_rows == "all" else paper_rows(dataset))
    if table.rows == "extended":
        rows += [variant for variant in extended_variants() if variant not in rows]
    return {variant: variant for variant in rows}


def plan_table(resolved: Resolved, name: str, dataset: str) -> TablePlan:
    """The files table ``name`` of ``dataset`` reads, with its rows and heading."""
    table = get_table(name)
    runs = table_runs(resolved, table, dataset)
    if table.runs == "main_results":
        ratios = resolved.datasets[dataset].imbalance_ratios
        short = layout.SHORT
        results = [
            (str(ir), layout.MAIN_RESULT.format(short=short.format(dataset=dataset, ir=ir)))
            for ir in ratios
        ]
        return TablePlan(table, dataset, tuple(results))
    seeds = resolved.seeds if table.seeds == "seeds" else (resolved.seed,)
    results = [
        (row, run.result(variant, seed))
        for run in runs
        for row, variant in table_rows(resolved, table, dataset, run).items()
        for seed in seeds
    ]
    title = ""
    if table.heading:
        title = table.heading.format(
            dataset=dataset,
            backbone=runs[0].backbone,
            ir=resolved.datasets[dataset].table_ir,
            seed=resolved.seed,
        )
    return TablePlan(table, dataset, tuple(results), title)
