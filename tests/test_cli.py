"""The ``move`` command: --help on every subcommand, one-line errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from move.cli import all_commands, main
from tests.conftest import REPO, run_move

SUBCOMMANDS = sorted(command.name for command in all_commands())


def move_process(*args: str) -> subprocess.CompletedProcess:
    """``python -m move`` in a child: what a real process prints (tracebacks under --debug)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "move", *args], capture_output=True, text=True, env=env
    )


def test_every_subcommand_has_help(capsys):
    assert {"demo-videos", "extract", "split", "train", "evaluate", "check-config"} <= set(
        SUBCOMMANDS
    )
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: move {name}")


def test_user_error_is_one_line_without_traceback(tmp_path):
    result = run_move("check-config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"move check-config: error: config file {tmp_path}/absent.yaml not found"
    )


def test_unexpected_error_is_one_line_unless_debug(tmp_path):
    broken = tmp_path / "features.h5"
    broken.write_bytes(b"not hdf5")
    args = ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--features", str(broken)]
    result = run_move(*args, "--split", str(tmp_path / "none.csv"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    debug = move_process(*args, "--split", str(tmp_path / "none.csv"), "--debug")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


def test_check_config_accepts_the_shipped_config():
    result = run_move("check-config", str(REPO / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_listing_the_commands_and_their_help_imports_no_torch():
    """``move --help`` and ``move train --help`` (every method's settings) load no torch, and no
    command loads pyplot until it draws (about a second of every workflow job's start)."""
    code = (
        "import sys, contextlib, io\n"
        "from move.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['plot', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False False"
