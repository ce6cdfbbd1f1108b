"""Where and how tensors run: device, dtype, threads, memory reuse and seeds, set once from the runtime params."""

from __future__ import annotations

import ctypes
import ctypes.util
import random

import numpy as np
import torch

from gap_pipeline.core.errors import ParamsError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU, so the same params run on a laptop and a GPU box."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(f"runtime.device = {device!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on CPU and bfloat16 on GPUs.

    Not for speed alone: bfloat16 can be faster on a CPU too, but it changes picks and generated replies against
    float32 (benchmarks/README.md has the measurements), so a CPU run stays exact unless asked otherwise.
    """
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


def configure_cpu(threads: int) -> None:
    """Threads and memory reuse for host-side work. ``threads`` 0 keeps torch's choice (one per core)."""
    if threads > 0:
        torch.set_num_threads(threads)
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Have glibc's malloc reuse freed memory instead of handing it back to the OS and faulting it in again.

    Every KV-cache append (``torch.cat``) and every activation allocates a new tensor of up to a few hundred MB.
    By default glibc maps each such block fresh and unmaps it on free, so each allocation pays a page fault per
    4 KiB page (benchmarks/README.md has what that cost). Raising the mmap and trim thresholds keeps freed blocks
    in the heap for the next tensor. It changes no
    result, only speed; the process just keeps its peak memory until it exits. Returns whether it applied
    (only glibc has ``mallopt``).
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h> option numbers
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))


def seed_everything(seed: int) -> None:
    """Seed every RNG a stage touches, so the same params give the same outputs on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
