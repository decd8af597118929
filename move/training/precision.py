"""How fast a training run computes: its precision (``train.precision``) and whether the
network runs compiled (``train.compile``). Reads and writes no files.

- ``float32``: the authors' (every table of the paper); no autocast, no TF32: the numbers of
  every run before these settings existed.
- ``tf32``: CUDA matrix products and convolutions round their float32 inputs to TF32 (10-bit
  mantissa) inside the training steps. No effect on the CPU, which has no TF32: a CPU run gives
  float32's numbers exactly.
- ``bf16``: the forward pass runs under ``torch.autocast`` in bfloat16 (matrix products in
  bfloat16, reductions and the loss in float32; the weights and Adam's moments stay float32).
  No loss scaling: bfloat16 has float32's exponent range, so gradients do not underflow as in
  float16 (which is why float16, which would need a ``GradScaler``, is not offered).

Evaluation always runs in float32, so ``move evaluate`` on the checkpoint gives the run's metrics.

``compile`` compiles each part of the network (PSA, codebook aggregator, classifier) in place
with ``torch.compile`` (inductor), so every method's calls into them (``aggregate_views``,
``classifier``) run compiled and the state dict keeps its keys (checkpoints and resume unchanged).
Inductor needs a C++ compiler on the CPU and Triton (with a C compiler) on CUDA; where none is
found the run says so in one line and trains uncompiled (the same maths).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import torch

from move.training.settings import PRECISIONS

CPU_COMPILERS = ("g++", "c++", "clang++")
C_COMPILERS = ("gcc", "cc", "clang")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision (None: the forward pass runs in float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return torch.bfloat16 if precision == "bf16" else None


def forward_precision(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context of a training step's forward pass and loss: bfloat16 autocast for ``bf16``,
    nothing otherwise (float32 and tf32 run the forward pass as it is)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device) -> Iterator[None]:
    """While training (forward and backward): TF32 matrix products and cuDNN convolutions on a
    CUDA device for ``tf32``; the flags are restored on exit (evaluation runs in float32). On
    the CPU, and for the other precisions, nothing changes."""
    if precision != "tf32" or device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def missing_compiler(device: torch.device) -> str | None:
    """Why ``torch.compile``'s inductor cannot build kernels for ``device`` here (one line), or
    None when it can: a C++ compiler (``CXX`` or g++/c++/clang++) for the CPU, Triton and a C
    compiler (``CC`` or gcc/cc/clang) for CUDA."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed (pip install triton)"
        names, variable, kind = C_COMPILERS, "CC", "C"
    else:
        names, variable, kind = CPU_COMPILERS, "CXX", "C++"
    chosen = os.environ.get(variable)
    candidates = [chosen] if chosen else list(names)
    if any(shutil.which(name) for name in candidates):
        return None
    return f"no {kind} compiler found ({variable} or {'/'.join(names)} on PATH; install gcc)"


def compile_model(model: torch.nn.Module, device: torch.device) -> str | None:
    """Compile each direct part of ``model`` in place (``nn.Module.compile``: parameters and
    state-dict keys unchanged); returns None, or the one-line reason it stayed uncompiled.

    Inductor draws dropout's random numbers as eager does (``fallback_random``), so a compiled
    run's draws are the eager run's and its numbers agree with it within rounding.
    """
    reason = missing_compiler(device)
    if reason is not None:
        return f"train.compile: {reason}; training uncompiled (the same maths, slower)"
    import torch._inductor.config as inductor

    inductor.fallback_random = True
    for part in model.children():
        part.compile()
    return None
