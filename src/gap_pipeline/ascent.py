"""Gradient Ascent Post-training: a few Adam steps that *raise* a causal LM's loss on one unlabeled text.

This module is the whole method; model loading, data and evaluation live elsewhere so it reads in one
screen. Recipe (Yoon et al., 2023): batch size 1, Adam lr 5e-5, betas (0.9, 0.98), dropout 0, <= 15 steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import trange
from transformers import PreTrainedModel, PreTrainedTokenizerBase


class DegenerateTextError(ValueError):
    """A text too short to have a next-token loss (fewer than 2 tokens)."""


@dataclass(frozen=True)
class StepLog:
    step: int  # 1-based index of the optimizer step just taken
    loss: float  # LM loss on the text at this step's forward pass, i.e. before its update
    seconds: float
    tokens_per_second: float


def encode_text(
    tokenizer: PreTrainedTokenizerBase, text: str, max_length: int, doc_id: object = None
) -> torch.Tensor:
    """Token ids of ``text`` truncated to ``max_length`` (the paper: 512), as a batch of one."""
    ids = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt").input_ids
    if ids.shape[1] < 2:
        raise DegenerateTextError(
            f"text doc_id={doc_id!r} tokenizes to {ids.shape[1]} token(s); GAP needs at least 2 "
            "(a next-token loss); pick another gap.index or drop the text from the corpus"
        )
    return ids


def disable_dropout(model: PreTrainedModel) -> None:
    """Zero every dropout: ascent must push the model itself uphill, not a random sub-network of it."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        # Attention layers copy their rate from the config at init (e.g. LlamaAttention.attention_dropout)
        # and pass it to the attention kernel in train mode, outside any nn.Dropout.
        for name, value in vars(module).items():
            if "dropout" in name and isinstance(value, float):
                setattr(module, name, 0.0)
    for key, value in model.config.to_dict().items():
        if "dropout" in key and isinstance(value, float):
            setattr(model.config, key, 0.0)


def make_optimizer(model: PreTrainedModel, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas)


def ascent_step(
    model: PreTrainedModel, optimizer: torch.optim.Optimizer, input_ids: torch.Tensor, ascend: bool = True
) -> float:
    """One optimizer step; returns the LM loss before the update. ``ascend=False`` is plain fine-tuning."""
    loss = model(input_ids=input_ids, labels=input_ids).loss
    # The optimizer minimises; negating the loss makes it climb the text's loss instead.
    (-loss if ascend else loss).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


@torch.no_grad()
def text_loss(model: PreTrainedModel, input_ids: torch.Tensor) -> float:
    return model(input_ids=input_ids, labels=input_ids).loss.item()


def gradient_ascent(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    steps: int,
    lr: float,
    betas: tuple[float, float],
    on_step: Callable[[int, PreTrainedModel], None] | None = None,
) -> list[StepLog]:
    """Post-train ``model`` in place for ``steps`` ascent steps; ``on_step`` sees the model after each."""
    model.train()
    disable_dropout(model)
    optimizer = make_optimizer(model, lr, betas)
    input_ids = input_ids.to(model.device)
    logs: list[StepLog] = []
    for step in trange(1, steps + 1, desc="GAP steps", unit="step", disable=steps == 0):
        start = time.perf_counter()
        loss = ascent_step(model, optimizer, input_ids)  # .item() syncs CUDA, so the time is real
        seconds = time.perf_counter() - start
        if not math.isfinite(loss):
            raise FloatingPointError(f"GAP loss became {loss} at step {step}; lower gap.lr")
        logs.append(StepLog(step, loss, seconds, input_ids.numel() / seconds))
        if on_step is not None:
            on_step(step, model)
    model.eval()
    return logs
