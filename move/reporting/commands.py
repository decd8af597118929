"""The reporting stage's commands: ``move draw-table`` (any declared table,
``move.reporting.registry``), the older ``move table``, ``imbalance-table``, ``paper-table`` and
``ablation-table`` (each one table), ``move plot`` and ``move docs``.

Each ``*_command`` runs the stage on parsed arguments and returns the line the CLI prints; the
figures ``move plot`` offers are ``move.reporting.plots.FIGURES``.
"""

from __future__ import annotations

import argparse

from move.arguments import Command, arg, input_file, input_pairs, output_file
from move.errors import MoveError


def name_and_path(item: str, name: str, example: str) -> tuple[str, str]:
    """``'move=a.json'`` -> ``('move', 'a.json')``; without ``=`` one line naming the form."""
    key, sep, path = item.partition("=")
    if not sep:
        raise MoveError(f"results argument {item!r} must be {name}=PATH (e.g. {example})")
    return key, path


def parse_variant_results(items: list[str]) -> dict[str, str]:
    """``['move=a.json', 'plain=b.json']`` -> {variant: path}; malformed or repeated -> one line."""
    results: dict[str, str] = {}
    for item in items:
        variant, path = name_and_path(item, "VARIANT", "move=results/x.json")
        if variant in results:
            raise MoveError(
                f"variant '{variant}' is given twice ({results[variant]} and {path}): "
                "a table shows one run per variant; pass one"
            )
        results[variant] = path
    return results


def table_command(args: argparse.Namespace) -> str:
    """The methods table of several runs, one per variant."""
    from move.reporting.tables import write_methods_table

    results = parse_variant_results(args.results)
    table = write_methods_table(results, args.out_md, args.out_csv, args.title or "")
    return f"wrote {args.out_md} and {args.out_csv}: {len(table)} methods"


def imbalance_table_command(args: argparse.Namespace) -> str:
    """The Table-3-style table of one method's runs at several imbalance ratios."""
    from move.files import write_text_atomic
    from move.reporting.tables import imbalance_table

    write_text_atomic(imbalance_table(args.results), args.out)
    return f"wrote {args.out} from {len(args.results)} result file(s)"


def paper_table_command(args: argparse.Namespace) -> str:
    """The paper's table of one dataset over seeds (markdown + CSV)."""
    from move.reporting.paper import paper_rows
    from move.reporting.seeds import gather, write_paper_table

    rows = args.rows or list(paper_rows(gather(args.results)[0] or ""))
    table = write_paper_table(args.results, rows, args.out_md, args.out_csv)
    cells = (
        table.drop_duplicates(["backbone", "imbalance_ratio", "variant"]) if len(table) else table
    )
    return (
        f"wrote {args.out_md} and {args.out_csv}: {len(cells)} cells from "
        f"{len(args.results)} result file(s)"
    )


def ablation_table_command(args: argparse.Namespace) -> str:
    """Table 4 over seeds (markdown + CSV) from ROW=PATH pairs."""
    from move.reporting.seeds import write_ablation_table

    rows: dict[str, list[str]] = {}
    for item in args.results:
        row, path = name_and_path(item, "ROW", "g=results/x.json")
        rows.setdefault(row, []).append(path)
    write_ablation_table(rows, args.out_md, args.out_csv)
    return f"wrote {args.out_md} and {args.out_csv}: rows {', '.join(rows)}"


def draw_table_command(args: argparse.Namespace) -> str:
    """Draw one declared table from its ROW=PATH pairs (the workflow's table rules run this)."""
    from move.reporting.registry import TableInputs
    from move.reporting.table_declarations import get_table

    table = get_table(args.table)
    if table.csv and not args.out_csv:
        raise MoveError(f"table '{table.name}' writes a CSV too: pass --out-csv")
    if not table.csv and args.out_csv:
        raise MoveError(f"table '{table.name}' writes no CSV: leave out --out-csv")
    results = tuple(name_and_path(item, "ROW", "move=results/x.json") for item in args.results)
    inputs = TableInputs(results, args.out_md, args.out_csv, args.title or "")
    return table.draw(inputs)


def table_choices() -> dict[str, str]:
    """Each declared table's name and title, for ``move draw-table --help``."""
    from move.reporting.table_declarations import tables

    return {name: table.title for name, table in tables().items()}


def plot_command(args: argparse.Namespace) -> str:
    """Draw one figure of ``FIGURES``."""
    from move.reporting.plots import draw

    return f"wrote {args.out} and {draw(args.figure, args)}"


def figure_choices() -> dict[str, str]:
    """Each figure's name and help, for ``move plot --help`` (matplotlib loads when it runs)."""
    from move.reporting.plots import FIGURES

    return {name: figure.help for name, figure in FIGURES.items()}


def plot_arguments() -> list:
    """Arguments of 'move plot': the figure, then what each figure reads."""
    figures = figure_choices()
    listed = "; ".join(f"{name}: {text}" for name, text in figures.items())
    return [
        arg("figure", choices=list(figures), help=listed),
        output_file("--out", required=True, help="PNG to write (its data goes to <out>.csv)"),
        input_file(
            "--results", nargs="+", help="results JSON(s) (per-class-ap, map-vs-ir, curves)"
        ),
        arg("--benchmarks", help="folder of Snakemake benchmark files (runtimes)"),
        arg(
            "--dataset", help="only the jobs of this dataset (job name <dataset> or <dataset>_...)"
        ),
        input_file("--checkpoint", help="checkpoint .pt (attention, confidence)"),
        input_file("--features", help="feature HDF5 file (attention, confidence)"),
        input_file("--split", help="split CSV (attention, confidence)"),
        input_file("--annotations", help="annotations CSV, to find the videos for the frame strip"),
        arg("--videos", help="video root folder, for the frame strip (attention)"),
        arg(
            "--video",
            nargs="+",
            action="extend",
            help="test video ids to show (attention); ids may start with '-' as YouTube ids do",
        ),
        arg(
            "--count",
            type=int,
            default=2,
            help="without --video: this many test videos, head to tail",
        ),
        arg("--subset", default="train", choices=["train", "test"], help="videos for confidence"),
        arg("--lam", type=float, default=0.5, help="interpolation weight (confidence)"),
        arg("--seed", type=int, default=0, help="seed of the partner shuffle (confidence)"),
    ]


def docs_command(args: argparse.Namespace) -> str:
    """Write (or, with ``--check``, compare) the documentation's generated reference pages."""
    from pathlib import Path

    from move.reporting.docs import write_pages

    paths = write_pages(Path(args.out), check=args.check)
    verb = "up to date" if args.check else "wrote"
    return f"{verb}: {', '.join(str(p) for p in paths)}"


def commands() -> list[Command]:
    """This stage's commands, declared anew on each call (methods registered since are listed)."""
    tables = table_choices()
    return [
        Command(
            "draw-table",
            "Draw a declared table (results/<dataset>_<table>.md, .csv) from its results files, "
            "as the workflow's table rules do.",
            [
                arg(
                    "table",
                    choices=list(tables),
                    help="; ".join(f"{name}: {title}" for name, title in tables.items()),
                ),
                input_pairs(
                    "results", nargs="+", help="ROW=results.json, in the order the table reads"
                ),
                output_file("--out-md", required=True, help="markdown table to write"),
                output_file("--out-csv", help="CSV table to write (tables that have one)"),
                arg("--title", help="heading above the markdown table (tables that have one)"),
            ],
            draw_table_command,
        ),
        Command(
            "imbalance-table",
            "Gather results JSONs at several imbalance ratios into a Table-3-style markdown table: "
            "the paper's numbers, best and final epoch side by side.",
            [
                input_file("results", nargs="+", help="results/<dataset>_ir<IR>.json files"),
                output_file("--out", required=True, help="markdown file to write"),
            ],
            imbalance_table_command,
        ),
        Command(
            "table",
            "Gather results JSONs of several methods into a Table-3-style table.",
            [
                input_pairs("results", nargs="+", help="VARIANT=results.json, one per method"),
                output_file("--out-md", required=True, help="markdown table to write"),
                output_file("--out-csv", required=True, help="CSV table to write"),
                arg("--title", help="heading above the markdown table"),
            ],
            table_command,
        ),
        Command(
            "paper-table",
            "The paper's table of one dataset over seeds (Table 3; VideoLT: Tables 1-2): each cell "
            "the mean ± std of a (variant, backbone, IR) over its seeds, the paper's number and "
            "the difference in our std beside, for the best and the final epoch.",
            [
                input_file("results", nargs="+", help="results JSONs (every seed of every cell)"),
                arg(
                    "--rows",
                    nargs="+",
                    help="variants in row order (default: the paper's rows for the dataset)",
                ),
                output_file("--out-md", required=True, help="markdown table to write"),
                output_file("--out-csv", required=True, help="CSV (one row per cell and metric)"),
            ],
            paper_table_command,
        ),
        Command(
            "ablation-table",
            "Table 4's ablation over seeds: rows (a)-(g), each the mean ± std over its seeds, "
            "the paper's Table 4 beside where it applies (VideoLT, ResNet-101).",
            [
                input_pairs("results", nargs="+", help="ROW=results.json, once per row and seed"),
                output_file("--out-md", required=True, help="markdown table to write"),
                output_file("--out-csv", required=True, help="CSV (one row per cell and metric)"),
            ],
            ablation_table_command,
        ),
        Command(
            "plot",
            "Draw a figure of trained runs: a PNG and the CSV of its data.",
            plot_arguments(),
            plot_command,
            dash_values=("--video",),
        ),
        Command(
            "docs",
            "Write the documentation's reference pages generated from the code (configuration "
            "from the schema, methods and backbones from their registries) into docs/reference/.",
            [
                output_file("--out", default=str(_reference_dir()), help="folder of the pages"),
                arg(
                    "--check",
                    action="store_true",
                    help="write nothing; fail naming the pages that differ from the code's",
                ),
            ],
            docs_command,
        ),
    ]


def _reference_dir():
    from move.reporting.docs import REFERENCE_DIR

    return REFERENCE_DIR
