"""Helpers shared by the benchmarks: CPU time, and running a measurement on another commit's code.

Before/after figures come from one run: the baseline's ``move/`` (a git ref, e.g. ``main``) is
unpacked to a temporary folder and each measurement runs in a fresh process with that folder,
or this checkout, first on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def baseline_code(ref: str, scratch: Path) -> Path:
    """``move/`` (and the ``workflow/`` schema it reads) of git ref ``ref``, unpacked under
    ``scratch``: a folder to put on PYTHONPATH."""
    folder = scratch / f"baseline-{ref.replace('/', '_')}"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "move", "workflow"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_measurement(script: str, arguments: list[str], code: Path) -> dict:
    """Run ``script arguments`` in a fresh process with ``code`` first on PYTHONPATH; its JSON."""
    path = os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, script, *arguments],
        env=dict(os.environ, PYTHONPATH=path),
        capture_output=True,
        text=True,
        cwd=code,
    )
    if result.returncode != 0:
        raise SystemExit(f"measurement {arguments} of {code} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
