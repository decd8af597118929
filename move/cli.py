"""The ``move`` command: one subcommand per workflow stage (what the Snakemake rules call).

Each stage declares its commands (``commands()`` in ``move/<stage>/commands.py``: arguments,
files read and written, the function that runs); this module gathers them, parses, refuses an
output that would overwrite an input, and prints what the command returns. Errors print one line
(``move <command>: error: ...``) and exit 1; ``--debug`` shows tracebacks. Listing the commands
needs no torch.
"""

from __future__ import annotations

import argparse
import errno
import sys

from move.arguments import Command, arg, bind_dash_values, input_file
from move.config import check_config_command
from move.datasets import commands as datasets
from move.errors import MoveError, disk_full
from move.extraction import commands as extraction
from move.reporting import commands as reporting
from move.training import commands as training

CHECK_CONFIG = Command(
    "check-config",
    "Validate a config file against the workflow's schema.",
    [
        input_file(
            "config", nargs="?", default="config.yaml", help="config file (default config.yaml)"
        )
    ],
    check_config_command,
)
DEBUG = arg("--debug", action="store_true", help="show Python tracebacks on errors")


def all_commands() -> list[Command]:
    """Every command, in --help's order: the pipeline's stages, then the tools around them."""
    dataset_commands = datasets.commands()
    return [
        *dataset_commands[:1],  # demo-videos
        *extraction.commands(),
        *dataset_commands[1:],
        *training.commands(),
        *reporting.commands(),
        CHECK_CONFIG,
    ]


def build_parser(commands: list[Command] | None = None) -> argparse.ArgumentParser:
    """The ``move`` command line: one sub-command per command of the stages."""
    parser = argparse.ArgumentParser(
        prog="move",
        description="Video long-tailed recognition with MOVE: the stages of the workflow.",
        epilog="Run 'move <command> --help' for a command's options. Usually called by Snakemake rules.",
    )
    parser.add_argument(*DEBUG.flags, **DEBUG.options)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for command in commands or all_commands():
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            epilog=command.epilog or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(*DEBUG.flags, **DEBUG.options | {"default": argparse.SUPPRESS})
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        command.add_to(sub)
    return parser


def parse(argv: list[str], commands: list[Command]) -> argparse.Namespace:
    """Parse ``argv``; values of a command's ``dash_values`` options may start with '-' (they
    run until the next option any command knows)."""
    known = {"--debug", "--quiet", "-h", "--help"}
    known |= {option for command in commands for option in command.option_strings()}
    for option in {o for command in commands for o in command.dash_values}:
        argv = bind_dash_values(argv, option, known)
    return build_parser(commands).parse_args(argv)


def one_line(error: MoveError) -> str:
    """A ``MoveError``'s message as one line: raised in a DataLoader worker, torch re-raises it
    with the worker's traceback text (its last line is the message); any other message of
    several lines (a library's text quoted in it) is joined, so no line of it is lost."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if any("Traceback (most recent call last)" in line for line in lines):
        return lines[-1].removeprefix("move.errors.MoveError: ")
    return " ".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``move`` with ``argv`` (default: the process's); the exit code."""
    commands = all_commands()
    args = parse(sys.argv[1:] if argv is None else list(argv), commands)
    command = next(command for command in commands if command.name == args.command)
    try:
        command.refuse_output_over_input(args)
        print(command.run(args))
    except MoveError as error:
        if args.debug:
            raise
        print(f"move {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"move {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            print(f"move {args.command}: error: {disk_full(error.filename)}", file=sys.stderr)
            return 1
        print(
            f"move {args.command}: error: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
