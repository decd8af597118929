"""The GPU check runs end to end on the CPU in its reduced mode and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_check_reduced_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--reduced", "--device", "cpu",
         "--workers", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["reduced"] and report["device"] == "cpu"
    assert report["extraction"]["backbone_frames_per_s"] > 0
    assert report["extraction"]["decode_frames_per_s"] > 0
    assert report["training"]["step_ms"] > 0 and report["training"]["checkpoint_float16_mb"] > 0
    assert report["agreement"]["feature_cosine_min"] > 0.999  # the CPU against itself
    assert report["agreement"]["train_mAP_difference"] < 1e-6
    assert set(report["sharing"]) == {
        "1_runs_steps_per_s",
        "2_runs_steps_per_s",
        "4_runs_steps_per_s",
    }
    assert "| training: step_ms |" in done.stdout
