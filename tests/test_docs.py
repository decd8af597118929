"""The documentation keeps its promises: the generated reference pages match the code, and every
shell command in README.md and docs/ still works (planned with ``snakemake -n``, parsed by the
``move`` command line, or run where it is quick)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

import pytest

from move.errors import MoveError
from move.reporting import docs
from tests.conftest import REPO
from tests.snakemake_runs import workflow_env

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# Commands another test runs as they are: README's install + demo and test commands
# (tests/test_packaging.py keeps them equal to .ci/run's, which runs them).
RUN_ELSEWHERE = {
    "pip install torch==2.14.1 torchvision==0.29.1 && pip install -e '.[test]' && "
    "snakemake --cores 2 results/demo_ir0.1.json",
    "python -m pytest -q",
    "python -m pytest -q --full",
}


def shell_blocks() -> list[tuple[str, list[str]]]:
    """(page, commands) of every ```bash / ```sh block (continuations joined, comments
    dropped): a block's commands run in order, as a reader would type them."""
    found = []
    for page in PAGES:
        for body in re.findall(r"```(?:bash|sh)\n(.*?)```", page.read_text(), re.S):
            commands = []
            for line in re.sub(r"\\\n\s*", " ", body).splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    commands.append(command)
            found.append((page.relative_to(REPO).as_posix(), commands))
    return found


BLOCKS = shell_blocks()
COMMANDS = [(page, command) for page, commands in BLOCKS for command in commands]

README_SNAKEMAKE = {c for p, c in COMMANDS if p == "README.md" and c.startswith("snakemake")}


def test_generated_pages_are_current():
    """docs/reference/{configuration,methods,backbones}.md are what `move docs` writes today."""
    docs.write_pages(check=True)


def test_a_stale_page_is_named(tmp_path):
    docs.write_pages(tmp_path)
    docs.write_pages(tmp_path, check=True)
    page = tmp_path / "methods.md"
    page.write_text(page.read_text().replace("LDAM-DRW", "LDAM"))
    with pytest.raises(MoveError, match="methods.md"):
        docs.write_pages(tmp_path, check=True)


def test_the_reference_pages_cover_every_key_method_and_backbone():
    from move.config import load_schema
    from move.extraction.backbones import BACKBONES
    from move.training.methods import method_names

    configuration = docs.configuration_page()
    for key in load_schema()["$defs"]["train"]["properties"]:
        assert f"| `train.{key}` |" in configuration, key
    assert "| `train.ldam_drw.drw_epoch` | integer | `50` | >= 0 |" in configuration
    methods = docs.methods_page()
    assert all(f"## `{name}`" in methods for name in method_names())
    backbones = docs.backbones_page()
    assert all(f"## `{name}`" in backbones for name in BACKBONES)


def test_code_blocks_close_with_a_bare_fence():
    """A closing fence with a language (```text) does not close a Markdown code block: the rest
    of the page would render as code."""
    for page in PAGES:
        inside = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                assert not inside or line.strip() == "```", f"{page.name}:{number}: {line.strip()}"
                inside = not inside
        assert not inside, f"{page.name}: a code block is never closed"


def test_commands_are_found_in_readme_and_docs():
    pages = {page for page, _ in COMMANDS}
    assert {"README.md", "docs/cluster.md", "docs/figures.md", "docs/quickstart.md"} <= pages
    assert (
        "snakemake --cores 2 results/demo_paper.md --config 'seeds=[0, 1, 2, 3, 4]'"
        in README_SNAKEMAKE
    )


def user_data(tmp_path) -> dict[str, str]:
    """Stand-ins for the folders the documented commands name (/data/...), and a config file
    pointing the real datasets at empty inputs, so that their targets can be planned."""
    import yaml

    from tests.test_profiles import site_paths

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    paths = site_paths(tmp_path / "site", config)
    del paths["datasets"]["mirrored"]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(paths))
    for folder in ("kinetics400", "MOVE/ResNet50", "MOVE/ResNet101"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    return {"/data/": f"{tmp_path}/data/"}


def planned(command: str, tmp_path) -> subprocess.CompletedProcess:
    """Run ``command`` (a line or ``a && b``) in ``tmp_path`` beside this checkout's workflow:
    `snakemake` only plans (``-n``), with the shipped config.yaml first and the user-data
    stand-ins, `echo` and `export` run as written."""
    replacements = user_data(tmp_path)
    for link in ("workflow", ".test"):
        (tmp_path / link).symlink_to(REPO / link)
    env = workflow_env()
    results = None
    for part in command.split(" && "):
        for old, new in replacements.items():
            part = part.replace(old, new)
        words = shlex.split(part)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if words[0] == "export":
            key, _, value = words[1].partition("=")
            env[key] = value
            continue
        if words[0] == "echo":
            results = subprocess.run(part, shell=True, cwd=tmp_path, capture_output=True, text=True)
            continue
        assert words[0] == "snakemake", part
        configfiles = [str(REPO / "config.yaml"), str(tmp_path / "site.yaml")]
        rest = []
        words = words[1:]
        while words:
            word = words.pop(0)
            if word == "--configfile":
                configfiles.append(words.pop(0))
            else:
                rest.append(word)
        if "--report" in rest:
            rest = [w for w in rest if w != "--report"]
            rest = [w for w in rest if not w.endswith(".html")]
        if "--use-conda" in rest and shutil.which("conda") is None:
            pytest.skip("conda is not installed here: `--use-conda` cannot be planned")
        args = ["-s", str(REPO / "Snakefile"), "-d", str(tmp_path), *rest, "-n", "--nolock"]
        results = subprocess.run(
            [sys.executable, "-m", "snakemake", *args, "--configfile", *configfiles],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        if results.returncode:
            return results
    return results


def command_params():
    """One case per documented command; a block's `export` / `echo` lines go with the commands
    after them in that block. README's snakemake commands and every `move` command run in the
    default suite, the rest (each a Snakemake planning, seconds) with --full."""
    seen, params = set(), []
    for page, commands in BLOCKS:
        setup = []
        for command in commands:
            if command.split()[0] in ("export", "echo"):
                setup.append(command)
                continue
            if command in seen or command in RUN_ELSEWHERE:
                continue
            seen.add(command)
            fast = command in README_SNAKEMAKE or command.startswith("move ")
            full = " && ".join([*setup, command])
            params.append(
                pytest.param(
                    full, marks=[] if fast else [pytest.mark.slow], id=f"{page}:{command[:60]}"
                )
            )
    return params


@pytest.mark.parametrize("command", command_params())
def test_documented_command_works(command, tmp_path):
    """Each documented command: `move ...` parses with today's options; `snakemake ...` plans
    (with stand-in folders for your data: the planning is what can break, not your videos)."""
    words = shlex.split(command)
    if words[0] == "move":
        from move.cli import all_commands, parse

        args = parse(words[1:], all_commands())
        assert args.command == words[2] if words[1] == "--debug" else words[1]
        return
    if words[0] == "python":
        # python -m move docs / benchmarks/*.py: the command answers --help
        done = subprocess.run(
            [sys.executable, *words[1:3], "--help"]
            if words[1] == "-m"
            else [sys.executable, words[1], "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env=workflow_env(),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return
    done = planned(command, tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
