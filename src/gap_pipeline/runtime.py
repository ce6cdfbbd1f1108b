"""Where and how tensors run: device, dtype, threads and seeds, resolved once from the runtime params."""

from __future__ import annotations

import random

import numpy as np
import torch

from gap_pipeline.errors import ParamsError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU, so the same params run on a laptop and a GPU box."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(f"runtime.device = {device!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on CPU (bfloat16 matmuls are slow there) and bfloat16 on GPUs."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


def configure_threads(threads: int) -> None:
    """0 keeps torch's choice (one thread per core); a positive value caps intra-op threads."""
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed every RNG a stage touches, so the same params give the same outputs on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
