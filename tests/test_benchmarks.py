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
        capture_output=True, text=True, timeout=900,
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
    # every train.precision, eager and compiled (tf32 is float32 on the CPU)
    training = report["training"]
    for precision in ("float32", "tf32", "bf16"):
        for name in (precision, f"{precision} compiled"):
            assert training[f"step_ms {name}"] > 0
            assert training[f"epoch_s {name} (max of compute and loader, scaled)"] > 0
            assert training[f"gpu_utilisation_percent {name}"] is None  # no GPU here
    assert report["agreement"]["train_mAP_bf16_difference"] < 0.05
    # extraction against the decode ceiling, the sized workers, JPEG frames on the "device"
    extraction = report["extraction"]
    assert extraction["decode_ceiling_frames_per_s"] > 0
    assert extraction["sized_decode_workers"] == 1  # --workers 1 allows one
    assert extraction["extract_frames_per_s (end to end, with model load)"] > 0
    assert extraction["jpeg_device_decode_frames_per_s"] > 0
    assert "frames/s per worker" in done.stderr  # the sizing's log line
