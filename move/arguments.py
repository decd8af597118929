"""How a stage declares its commands for the ``move`` CLI: each ``Command`` lists its arguments,
file arguments tagged as inputs or outputs where they are declared, options derived from a
settings dataclass, and the function that runs it. Plain argparse, no torch.

``move/cli.py`` only gathers the stages' commands, parses, checks that no output names an input,
and prints what the command returns.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from move.errors import MoveError
from move.files import same_file

INPUT, OUTPUT = "input", "output"


@dataclass(frozen=True)
class Argument:
    """One ``add_argument`` call; ``role`` tags a file argument as an input or an output."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    role: str | None = None
    pairs: bool = False  # values are NAME=PATH (the path is the file)

    @property
    def dest(self) -> str:
        """The attribute argparse stores the value in."""
        if "dest" in self.options:
            return self.options["dest"]
        name = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return name.lstrip("-").replace("-", "_")

    @property
    def shown(self) -> str:
        """How a message names the argument: its option, or a positional's metavar."""
        flag = self.flags[0]
        return flag if flag.startswith("-") else self.options.get("metavar", flag)


def arg(*flags: str, **options: Any) -> Argument:
    """An option or positional argument, as ``ArgumentParser.add_argument`` takes it."""
    return Argument(flags, options)


def input_file(*flags: str, **options: Any) -> Argument:
    """A file the command reads: no output of the same call may name it."""
    return Argument(flags, options, INPUT)


def input_pairs(*flags: str, **options: Any) -> Argument:
    """Files the command reads, given as ``NAME=PATH``."""
    return Argument(flags, options, INPUT, pairs=True)


def output_file(*flags: str, **options: Any) -> Argument:
    """A file the command writes: it must name no input and no other output."""
    return Argument(flags, options, OUTPUT)


def settings_arguments(
    settings: type,
    only: Iterable[str] | None = None,
    defaults: dict[str, Any] | None = None,
    roles: dict[str, str] | None = None,
) -> list[Argument]:
    """``--<field>`` options from a settings dataclass: its type, its default (or ``defaults``'
    for a CLI-only meaning such as None = automatic), its help and choices from field metadata;
    ``roles`` tags fields that name files (``{"weights": INPUT}``)."""
    hints = typing.get_type_hints(settings)
    names = list(only) if only is not None else [f.name for f in dataclasses.fields(settings)]
    fields = {f.name: f for f in dataclasses.fields(settings)}
    arguments = []
    for name in names:
        spec = fields[name]
        default = (defaults or {}).get(name, spec.default)
        kind = hints[name]
        if type(None) in typing.get_args(kind):  # int | None: an int, None the default's meaning
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        options: dict[str, Any] = {"type": kind, "default": default}
        options["help"] = f"{spec.metadata.get('help', '')} (default: {default})".lstrip()
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
        role = (roles or {}).get(name)
        arguments.append(Argument((f"--{name.replace('_', '-')}",), options, role))
    return arguments


@dataclass(frozen=True)
class Command:
    """A ``move`` subcommand: its name, one-line help, arguments, and the stage function that
    runs it on the parsed arguments and returns the line to print."""

    name: str
    help: str
    arguments: list[Argument]
    run: Callable[[argparse.Namespace], str]
    # options whose values may start with '-' (YouTube ids), bound to them before parsing
    dash_values: tuple[str, ...] = ()
    epilog: str = ""  # shown after the options in 'move <name> --help'

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Declare every argument on ``parser``."""
        for argument in self.arguments:
            parser.add_argument(*argument.flags, **argument.options)

    def option_strings(self) -> set[str]:
        """Every option string this command knows."""
        return {f for a in self.arguments for f in a.flags if f.startswith("-")}

    def files(self, args: argparse.Namespace, role: str) -> list[tuple[Argument, str]]:
        """(argument, path) of every file argument of ``role`` given on this call."""
        found = []
        for argument in self.arguments:
            if argument.role != role:
                continue
            value = getattr(args, argument.dest, None)
            values = [] if value is None else [value] if isinstance(value, str) else list(value)
            paths = [str(v).partition("=")[2] if argument.pairs else str(v) for v in values]
            found += [(argument, path) for path in paths if path]
        return found

    def refuse_output_over_input(self, args: argparse.Namespace) -> None:
        """Stop when an output path names one of the inputs or another output of this call."""
        seen = self.files(args, INPUT)
        for argument, path in self.files(args, OUTPUT):
            for other, known in seen:
                if same_file(path, known):
                    raise MoveError(
                        f"{argument.shown} {path} is the same file as {describe(other)}: an "
                        "output must not overwrite an input or another output; choose another path"
                    )
            seen.append((argument, path))


def describe(argument: Argument) -> str:
    """A positional's value is 'one of the <name>' / 'the <name>'; an option is its flag."""
    if argument.flags[0].startswith("-"):
        return argument.flags[0]
    many = argument.options.get("nargs") in ("+", "*")
    return f"{'one of the' if many else 'the'} {argument.flags[0]}"


def bind_dash_values(argv: list[str], option: str, known: set[str]) -> list[str]:
    """``--video -abc x`` -> ``--video=-abc --video=x``: values of ``option`` may start with '-'
    (YouTube ids do); they run until the next option in ``known``."""
    result: list[str] = []
    binding = False
    for token in argv:
        if token == option:
            binding = True
            result.append(token)
        elif binding and token.split("=")[0] not in known:
            if result[-1] == option:
                result.pop()
            result.append(f"{option}={token}")
        else:
            binding = False
            result.append(token)
    return result


def settings_from(settings: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """An instance of a settings dataclass from the parsed ``--<field>`` options (+ overrides)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(settings)}
    return settings(**values | overrides)
