"""Shared fixtures: tiny synthetic videos and feature files made by code (no downloads).

`python -m pytest -q` runs the default suite; `--full` adds the tests marked `slow` (end-to-end
workflow runs) and `slurm` (a real single-node SLURM cluster: root, apt-get). Either writes only
under the repository and temporary folders: Snakemake's and matplotlib's caches go to one.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from move.datasets.demo import DemoSpec, make_demo_dataset
from move.files import file_sha256

REPO = Path(__file__).resolve().parent.parent
TINY_DEMO = DemoSpec(classes=4, train_per_class=6, val_per_class=3, frames=8, size=32, seed=3)
FULL_ONLY = ("slow", "slurm")

# Set before anything imports matplotlib; inherited by every Snakemake and `move` subprocess.
_caches = tempfile.mkdtemp(prefix="move-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _caches
os.environ["MPLCONFIGDIR"] = os.path.join(_caches, "matplotlib")

# One torch thread count here and in every `move` subprocess (OMP_NUM_THREADS), whatever the
# machine's cores: features compared bit for bit between them are only equal for equal counts.
# In a parallel worker (pytest-xdist) one thread: workers share the cores, and more threads than
# cores make OpenMP's spinning threads wait on each other.
TORCH_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
os.environ["OMP_NUM_THREADS"] = str(TORCH_THREADS)
torch.set_num_threads(TORCH_THREADS)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="also run the slow end-to-end and the real-SLURM tests (markers: slow, slurm)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --full (and without an explicit -m), leave out the slow and SLURM tests, unless
    named on the command line (``tests/test_x.py::test_y``)."""
    if config.getoption("--full") or config.getoption("-m"):
        return
    named = {arg.split("[")[0] for arg in config.args if "::" in arg}
    kept, left_out = [], []
    for item in items:
        full_only = any(item.get_closest_marker(m) for m in FULL_ONLY)
        (left_out if full_only and item.nodeid.split("[")[0] not in named else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_caches, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> Path:
    """A 4-class demo dataset (36 H.264 videos, 8 frames of 32x32) with annotations.csv."""
    root = tmp_path_factory.mktemp("tiny_demo")
    make_demo_dataset(root, TINY_DEMO, progress=False)
    return root


def write_feature_file(
    path: Path,
    labels: dict[str, str],
    frames: int = 6,
    dim: int = 16,
    seed: int = 0,
    separable: bool = True,
) -> Path:
    """An HDF5 feature file in move's layout with class-dependent random features."""
    from move.features import create_feature_file, write_video_features

    rng = np.random.default_rng(seed)
    names = sorted(set(labels.values()))
    centres = {name: rng.normal(size=dim) * (2.0 if separable else 0.0) for name in names}
    with create_feature_file(
        path, {"backbone": "synthetic", "frames": frames, "feature_dim": dim}
    ) as handle:
        for video_id, label in labels.items():
            features = centres[label] + rng.normal(size=(frames, dim))
            write_video_features(handle, video_id, features.astype(np.float32), label, frames)
        handle.attrs["complete"] = True
    return path


def write_features_and_split(
    folder: Path, per_class: int, train_per_class: int, dim: int = 16, classes: int = 3
) -> tuple[Path, Path]:
    """``f.h5`` (videos ``v<class>_<i>``, 4 frames) and ``split.csv``: the first
    ``train_per_class`` videos of each class train, the others test."""
    import pandas as pd

    rows = [
        (f"v{c}_{i}", c, f"class{c}", "train" if i < train_per_class else "test")
        for c in range(classes)
        for i in range(per_class)
    ]
    labels = {video_id: label for video_id, _, label, _ in rows}
    features = write_feature_file(folder / "f.h5", labels, frames=4, dim=dim)
    split = folder / "split.csv"
    pd.DataFrame(rows, columns=["video_id", "class_index", "label", "split"]).to_csv(
        split, index=False
    )
    return features, split


class LocalServer:
    """A folder served over HTTP on 127.0.0.1 (no internet): ``url(name)``, ``requests`` made.

    Range requests are answered (206) as real file servers do. ``faults[name]`` queues how the
    next requests of a file misbehave, one entry per request (then it is served normally):
    ``cut:<n>`` announces the whole length but sends n bytes and closes; ``html`` answers 200
    with an HTML error page; ``empty`` answers 200 with no body; ``stall`` sends the headers and
    a few bytes, then nothing for 3 s. ``ranges`` records each request's Range header.
    """

    def __init__(self, folder: Path):
        import http.server
        import threading
        import time

        self.folder, self.requests, self.ranges = folder, [], []
        self.faults: dict[str, list[str]] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest's output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                name = self.path.lstrip("/")
                server.requests.append(self.path)
                server.ranges.append(self.headers.get("Range"))
                path = server.folder / name
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                fault = (server.faults.get(name) or ["ok"]).pop(0)
                if fault == "html":
                    page = b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>"
                    return self.reply(200, page, {"Content-Type": "text/html"})
                if fault == "empty":
                    return self.reply(200, b"", {})
                start = 0
                if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                    start = int(match[1])
                body = data[start:]
                headers = {"Accept-Ranges": "bytes"}
                if start:
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                if fault.startswith("cut:"):
                    return self.reply(206 if start else 200, body, headers, int(fault[4:]))
                if fault == "stall":
                    self.reply(206 if start else 200, body, headers, 10, close=False)
                    time.sleep(3)
                    self.close_connection = True
                    return None
                return self.reply(206 if start else 200, body, headers)

            def reply(self, status, body, headers, send=None, close=True) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body if send is None else body[:send])
                self.wfile.flush()
                self.close_connection = close

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_server(tmp_path):
    """Serves ``tmp_path / 'served'`` over HTTP for the duration of a test."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = LocalServer(folder)
    yield server
    server.close()


def make_context(values: dict, counts, epoch: int = 1, seed: int = 1, state: dict | None = None):
    """A method's ``RunContext`` as a run builds it: settings from ``values`` resolved with their
    method (its settings filled in), tau of ``counts``, a seeded generator."""
    from move.training.context import RunContext
    from move.training.methods import resolve_settings
    from move.training.settings import TrainSettings
    from move.training.vicinity import tail_weighted_criterion

    method, settings = resolve_settings(TrainSettings.from_dict(values))
    return RunContext(
        settings,
        method,
        method.options(settings.method_settings),
        tail_weighted_criterion(torch.from_numpy(counts)),
        counts,
        epoch=epoch,
        generator=torch.Generator().manual_seed(seed),
        state=state or {},
    )


def run_move(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The ``move`` command run in this process (``move.cli.main``), its output captured as a
    child's would be: no torch import paid per call. ``env`` sets variables for the call.

    Tests of what only a real process shows (signals, ``--debug`` tracebacks, import-time
    behaviour, bytes written by another process) start ``python -m move`` instead.
    """
    from move.cli import main

    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse: --help, usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["move", *argv], code, out.getvalue(), err.getvalue())


def tiny_train(**changes) -> dict:
    """Training settings of a network small enough to train in a second on the CPU (the tests'
    one definition; each test states only what it changes)."""
    tiny = dict(
        epochs=3, batch_size=8, frames_train=8, frames_test=8, eval_every=1, heads=2, d_k=4,
        d_v=4, clusters=3, codebook_dim=8, hidden_dim=16, lr=1e-3, device="cpu",
        resume_every_minutes=0,  # a resume state after every epoch: the tests kill runs mid-way
    )  # fmt: skip
    return tiny | changes


# VideoLT's released format, made small: <id>.npy features and the label lists.
VIDEOLT_CLASSES, VIDEOLT_DIM = 4, 16
VIDEOLT_NAMES = ["3DPainting", "Archery", "BakingCookies", "ZumbaDance"]


def make_release(root, n_train=24, n_test=8, missing=()):
    """features/<id>.npy with class-dependent features + labels/ lists, some videos multi-label."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(VIDEOLT_CLASSES, VIDEOLT_DIM)) * 3
    (root / "feats" / "sub").mkdir(parents=True)
    (root / "labels").mkdir()
    lines = {"train": [], "test": []}
    counts = np.zeros(VIDEOLT_CLASSES, dtype=int)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            classes = [i % VIDEOLT_CLASSES] + ([(i + 1) % VIDEOLT_CLASSES] if i % 3 == 0 else [])
            video_id = f"{split}{i:03d}"
            lines[split].append(f"{video_id} {','.join(map(str, classes))}")
            if split == "train":
                counts[classes] += 1
            if video_id in missing:
                continue
            frames = 5 + i % 4  # a different number of frames per video, as released
            x = centres[classes].mean(0) + rng.normal(size=(frames, VIDEOLT_DIM))
            folder = root / "feats" / ("sub" if i % 2 else "")
            np.save(folder / f"{video_id}.npy", x.astype(np.float32))
    for split, rows in lines.items():
        (root / "labels" / f"{split}.lst").write_text("\n".join(rows) + "\n")
    (root / "labels" / "count-labels-train.lst").write_text(  # VideoLT's format
        "".join(f"{VIDEOLT_NAMES[c]} {c} {n}.0\n" for c, n in enumerate(counts))
    )
    return root


def save_with_hash_name(state: dict, folder: Path, stem: str) -> Path:
    """Save ``state`` as ``<stem>-<first 8 hex of its sha256>.pth``, torchvision's naming."""
    tmp = folder / f"{stem}.tmp"
    torch.save(state, tmp)
    return tmp.rename(folder / f"{stem}-{file_sha256(tmp)[:8]}.pth")
