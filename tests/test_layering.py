"""The package's layers: no module imports one of a later stage or a higher layer.

Floors, lowest first (a module may import its own floor and the ones below):

0. ground: configuration and what every stage shares (``move.config``, ``move.errors``,
   ``move.files``, ``move.validation``, ``move.annotations``, ``move.features`` (the HDF5
   feature file), ``move.device``, ``move.downloads``, ``move.plugins``): imports no stage;
1-4. the stages: ``move.datasets`` < ``move.extraction`` < ``move.training`` <
   ``move.reporting``. Datasets and extraction import neither each other (a second test): the
   pipeline runs video -> features (extraction) -> long-tailed splits (datasets), while the
   datasets stage also fetches the videos extraction reads; what both read (annotations, the
   feature file) is on the ground floor, so either order holds;
5. planning (``move.planning``: resolved config, run names, result paths, variants, ablation
   rows; ``move.targets``);
6. the command line (``move.cli``, ``move.__main__``, ``move.arguments`` and each stage's
   ``commands`` module, the stage's adapter to the CLI).

Every import counts, read with ``ast`` (nothing is imported): module-level ones, those inside
functions and those under ``TYPE_CHECKING``. An import deferred into a function still makes the
lower module need the higher one whenever that function runs, and a type-only import still ties
its signatures to the higher layer, so hiding an upward edge in a function does not remove it.
(Imports by name at run time, ``importlib.import_module("...")``, are not seen; the package uses
them only within one package.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO
from tests.test_imports import module_name

PACKAGE = REPO / "move"
GROUND = (
    "move.config",
    "move.errors",
    "move.files",
    "move.validation",
    "move.annotations",
    "move.features",
    "move.device",
    "move.downloads",
    "move.plugins",
    "move.layout",
)
STAGES = ("move.datasets", "move.extraction", "move.training", "move.reporting")
PLANNING = ("move.planning", "move.table_planning", "move.input_planning", "move.targets")
COMMAND_LINE = ("move.cli", "move.__main__", "move.arguments")
FLOOR_NAMES = ["ground", *[s.removeprefix("move.") for s in STAGES], "planning", "command line"]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def floor(module: str) -> int:
    """The floor of a ``move`` module (see the module docstring); unknown -> ValueError."""
    if module == "move" or any(_within(module, g) for g in GROUND):
        return 0
    if module in COMMAND_LINE or (module.endswith(".commands") and module.count(".") == 2):
        return 6
    if module in PLANNING:
        return 5
    for rank, stage in enumerate(STAGES, start=1):
        if _within(module, stage):
            return rank
    raise ValueError(f"module {module} has no floor: add it to tests/test_layering.py")


def imports(path: Path, modules: set[str]) -> list[tuple[int, str]]:
    """(line, module) of every ``move`` module ``path`` imports anywhere in its body (``from a
    import b`` is ``a.b`` when that is a module, else ``a``; relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((node.lineno, child if child in modules else base))
    return [(line, name) for line, name in found if name in modules]


def upward_imports(higher=lambda name, target: floor(target) > floor(name)) -> list[str]:
    """Every import from a lower floor to a higher one (or that ``higher`` refuses), as
    ``path:line: a (floor) imports b (floor)``."""
    files = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    problems: list[str] = []
    for name, path in files.items():
        for line, target in imports(path, set(files)):
            if higher(name, target):
                problems.append(
                    f"{path.relative_to(REPO)}:{line}: {name} ({FLOOR_NAMES[floor(name)]}) "
                    f"imports {target} ({FLOOR_NAMES[floor(target)]})"
                )
    return list(dict.fromkeys(problems))  # once each (``from a import b, c`` is one import)


def test_every_module_has_a_floor():
    for path in PACKAGE.rglob("*.py"):
        floor(module_name(path))  # raises naming a module that is on no floor


def test_the_floors_are_read_as_documented():
    assert floor("move.config") == 0 and floor("move.annotations") == 0
    assert floor("move.features") < floor("move.datasets.splits")
    assert floor("move.datasets.splits") < floor("move.training.loop")
    assert floor("move.training.loop") < floor("move.reporting.tables")
    assert floor("move.reporting.tables") < floor("move.planning") < floor("move.cli")
    assert floor("move.training.commands") == floor("move.cli")
    assert floor("move.training.methods") == 3


def test_the_reader_sees_function_level_and_type_checking_imports():
    files = {module_name(path) for path in PACKAGE.rglob("*.py")}
    found = {name for _, name in imports(PACKAGE / "training" / "methods" / "move.py", files)}
    assert "move.training.vicinity" in found  # imported inside a function
    assert "move.training.context" in found  # imported under TYPE_CHECKING


def test_an_upward_import_is_named_with_its_file_and_line(tmp_path, monkeypatch):
    """The check fails on a lower module importing a higher one (here: configuration importing
    a stage, as move/config.py once did)."""
    fake = tmp_path / "move"
    (fake / "training").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "training" / "__init__.py").write_text("")
    (fake / "training" / "methods.py").write_text("from move.errors import MoveError\n")
    (fake / "errors.py").write_text("MoveError = Exception\n")
    (fake / "config.py").write_text(
        '"""doc"""\n\ndef f():\n    from move.training import methods\n'
    )
    monkeypatch.setattr("tests.test_layering.PACKAGE", fake)
    monkeypatch.setattr("tests.test_layering.REPO", tmp_path)
    monkeypatch.setattr("tests.test_imports.REPO", tmp_path)
    assert upward_imports() == [
        "move/config.py:4: move.config (ground) imports move.training.methods (training)"
    ]


def test_no_module_imports_a_later_stage_or_a_higher_layer():
    problems = upward_imports()
    assert not problems, "imports from a lower floor to a higher one:\n" + "\n".join(problems)


def test_extraction_and_datasets_import_neither_each_other():
    def across(name: str, target: str) -> bool:
        stages = {floor(name), floor(target)}
        return stages == {STAGES.index("move.datasets") + 1, STAGES.index("move.extraction") + 1}

    problems = upward_imports(across)
    assert not problems, "imports between extraction and datasets:\n" + "\n".join(problems)
