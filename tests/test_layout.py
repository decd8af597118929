"""The file layout is written once (``move/layout.py``): rules and code fill its patterns, and
the target checks read targets through ``layout.regex``."""

from __future__ import annotations

import ast
import re

from move import layout
from tests.conftest import REPO

ROOTS = ("data/", "features/", "splits/", "results/", "figures/")
ROOTS_EXPRESSION = "|".join(map(re.escape, ROOTS))
PATTERN_TEXT = re.compile(rf"""["'](?:{ROOTS_EXPRESSION})[^"'\n]*\{{""")


def test_fill_keeps_the_fields_it_is_not_given():
    assert layout.fill(layout.FEATURES, dataset="{own_split_dataset}") == (
        "features/{own_split_dataset}/{backbone}.h5"
    )
    assert layout.fill(layout.LIST, name="train.txt") == "data/{dataset}/lists/train.txt"
    run = layout.RUN.format(dataset="demo", backbone="resnet50", ir=0.1)
    assert layout.RESULT.format(run=run, variant="move", seed=0) == (
        "results/demo/resnet50/ir0.1/move/seed0.json"
    )


def test_regex_reads_a_path_back_into_its_fields():
    expression = layout.regex(layout.SPLIT, lists="(?:lists/)?", dataset="(?P<d>[^/_]+)",
                              ir="(?P<ir>[^/]*?)", drawn=r"(?:_seed\d+)?")  # fmt: skip
    match = re.match(expression, "splits/lists/demo_ir0.1_seed3.csv")
    assert match and match["d"] == "demo" and match["ir"] == "0.1"
    assert not re.match(expression, "splits/demo_ir0.1.csv.bak")  # anchored
    assert layout.regex("a.{x}", anchored=False) == r"a\.[^/]+"  # literal parts escaped


def path_patterns_outside_the_layout() -> list[str]:
    """Every string in the package or the rules that spells a layout pattern (a path under one of
    the layout's roots holding a ``{field}``), but in ``move/layout.py``."""
    found = []
    for path in sorted((REPO / "move").rglob("*.py")):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            parts = [node] if isinstance(node, ast.Constant) else []
            if isinstance(node, ast.JoinedStr):  # an f-string: its text as written
                parts = [ast.Constant(ast.get_source_segment(path.read_text(), node) or "")]
            for part in parts:
                text = part.value if isinstance(part.value, str) else ""
                if text.lstrip("f\"'").startswith(ROOTS) and "{" in text:
                    found.append(f"{path.relative_to(REPO)}: {text[:60]}")
    for path in sorted((REPO / "workflow").rglob("*.smk")) + [REPO / "Snakefile"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if PATTERN_TEXT.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:60]}")
    return found


def test_no_path_pattern_is_written_outside_the_layout():
    assert not path_patterns_outside_the_layout()
