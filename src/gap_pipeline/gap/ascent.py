"""Gradient Ascent Post-training: a few Adam steps that *raise* a causal LM's loss on one unlabeled text.

This module is the whole method; model loading, data and evaluation live elsewhere so it reads in one
screen. Recipe (Yoon et al., 2023): batch size 1, Adam lr 5e-5, betas (0.9, 0.98), dropout 0, <= 15 steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from tqdm.auto import trange
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gap_pipeline.core.errors import DegenerateTextError, DivergenceError


@dataclass(frozen=True)
class StepLog:
    """The text's LM loss after ``step`` updates (step 0: the untouched model) and how long that update took."""

    step: int
    loss: float
    seconds: float | None  # None for step 0, which took no update
    tokens_per_second: float | None


@dataclass
class AscentResult:
    """What the ascent did. ``logs`` holds every kept step; on divergence the model holds ``kept_step``'s weights."""

    logs: list[StepLog] = field(default_factory=list)
    diverged_step: int | None = None  # the first step whose loss was non-finite or above the ceiling
    diverged_loss: float | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_step is not None

    @property
    def kept_step(self) -> int:
        return self.logs[-1].step


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
    # Fused: one kernel for all parameters instead of a Python loop over them.
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=True)


@contextmanager
def embedding_rows_gradient(model: torch.nn.Module) -> Iterator[bool]:
    """Within it, a tied input embedding's backward adds only the text's rows to the shared weight's gradient.

    Autograd otherwise sums the two uses of a tied weight out of place: the embedding's backward fills a
    vocabulary x hidden tensor of zeros, writes the text's few hundred rows into it, and adds the whole of it to
    the head's gradient of the same shape, making a third. For Gemma-3's 262k-token vocabulary each is 671 MB,
    moved on every step for a few hundred rows. Here the embedding reads the same storage through a second
    Parameter that sends back sparse rows, and on leaving they are added into the head's dense gradient in place.
    The sum is autograd's (each row's contributions are added in another order, so the last bits may differ).
    An untied embedding is left alone: its gradient is its own, and Adam needs every row of it. Yields whether
    the embedding was switched.
    """
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    shared = getattr(embedding, "weight", None)
    if not (isinstance(embedding, torch.nn.Embedding) and head is not None and head.weight is shared):
        yield False
        return
    alias, sparse = torch.nn.Parameter(shared.detach()), embedding.sparse  # detach(): the same storage, no copy
    embedding.weight, embedding.sparse = alias, True
    try:
        yield True
    finally:
        embedding.weight, embedding.sparse = shared, sparse
        if alias.grad is not None:
            with torch.no_grad():
                if shared.grad is None:
                    shared.grad = alias.grad.to_dense()
                else:
                    shared.grad.add_(alias.grad)


@torch.no_grad()
def text_loss(model: PreTrainedModel, input_ids: torch.Tensor) -> float:
    return model(input_ids=input_ids, labels=input_ids).loss.item()


def _within(loss: float, ceiling: float | None) -> bool:
    return math.isfinite(loss) and (ceiling is None or loss <= ceiling)


@torch.no_grad()
def snapshot_weights(
    model: torch.nn.Module, into: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """A copy of every parameter, to put back later with ``restore_weights``; ``into`` reuses an earlier copy.

    Reusing one saves allocating (and page-faulting in) a model's worth of memory on every step.
    """
    # On the CPU, so keeping a fallback costs host memory, not scarce accelerator memory.
    if into is None:
        return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        into[name].copy_(p)
    return into


@torch.no_grad()
def restore_weights(model: torch.nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        p.copy_(snapshot[name])


def gradient_ascent(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    steps: int,
    lr: float,
    betas: tuple[float, float],
    loss_ceiling: float | None = None,
    on_step: Callable[[StepLog, PreTrainedModel], None] | None = None,
    embedding_rows: bool = True,
) -> AscentResult:
    """Post-train ``model`` in place for up to ``steps`` ascent steps.

    Each forward pass both measures the weights of the previous update and starts the next one, so checking
    the loss costs nothing extra. A loss that is non-finite or above ``loss_ceiling`` stops the ascent and
    puts back the last weights whose loss passed: a diverged model never leaves this function. ``on_step``
    sees every accepted step, step 0 (the untouched model) included. ``embedding_rows=False`` leaves a tied
    embedding's gradient to autograd's dense sum: the same result, kept as the reference that tests and
    benchmarks/gap_step.py compare ``embedding_rows_gradient`` with.
    """
    model.train()
    disable_dropout(model)
    optimizer = make_optimizer(model, lr, betas)
    input_ids = input_ids.to(model.device)
    result = AscentResult()
    accepted: dict[str, torch.Tensor] | None = None
    seconds = None
    for step in trange(0, steps + 1, desc="GAP steps", unit="step", disable=steps == 0):
        start = time.perf_counter()
        rows = embedding_rows_gradient(model) if embedding_rows else nullcontext()
        with torch.set_grad_enabled(step < steps), rows:  # the last pass only measures
            loss = model(input_ids=input_ids, labels=input_ids).loss
            value = loss.item()  # syncs CUDA, so the step time below is real
            if step < steps and _within(value, loss_ceiling):
                # The optimizer minimises; negating the loss makes it climb the text's loss instead.
                (-loss).backward()
        if not _within(value, loss_ceiling):
            if step == 0:
                raise DivergenceError(
                    f"the untouched model's loss on this text is already {value} (gap.loss_ceiling = "
                    f"{loss_ceiling}); raise gap.loss_ceiling or check the model and dtype"
                )
            result.diverged_step, result.diverged_loss = step, value
            if accepted is not None:
                restore_weights(model, accepted)
            break
        log = StepLog(step, value, seconds, None if seconds is None else input_ids.numel() / seconds)
        result.logs.append(log)
        if step < steps:
            accepted = snapshot_weights(model, into=accepted)
        if on_step is not None:
            hook_start = time.perf_counter()
            on_step(log, model)
            start += time.perf_counter() - hook_start  # the step's time is the ascent's alone
        if step == steps:
            break
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - start
    model.eval()
    return result
