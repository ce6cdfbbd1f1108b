"""Scored positions onto the vocabulary: log-softmax at the target and the greedy pick, a chunk of columns at a time.

For Gemma-3's 262k-token vocabulary the projection is most of the model, so only the positions that are scored
are projected, many at once, and the rows x vocabulary logits are never held at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch.func import functional_call


def reduce_vocabulary(chunks: Iterable[tuple[int, torch.Tensor]], targets: torch.Tensor,
                      dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's log-softmax at its target, and whether the target is the row's argmax, from column chunks.

    ``chunks`` yields (first column, logits of those columns) for every column in order. The logsumexp is taken
    online (a running maximum and a rescaled sum of exponentials, as fused linear-cross-entropy kernels do), so
    the rows x vocabulary logits never exist at once: each chunk is reduced while it is still in cache, which on
    a CPU is faster than writing and re-reading a 262k-column matrix. Ties go to the first column, as argmax does.
    """
    rows, device = targets.shape[0], targets.device
    peak = torch.full((rows,), float("-inf"), dtype=dtype, device=device)  # running max: also the argmax's value
    total = torch.zeros(rows, dtype=dtype, device=device)  # sum of exp(logit - peak) so far
    target_logit = torch.full((rows,), float("nan"), dtype=dtype, device=device)
    best_column = torch.zeros_like(targets)
    for start, logits in chunks:
        logits = logits.to(dtype)
        width = logits.shape[-1]
        chunk_peak, chunk_column = logits.max(-1)
        better = chunk_peak > peak  # strictly: a tie keeps the earlier column
        best_column = torch.where(better, chunk_column + start, best_column)
        new_peak = torch.maximum(peak, chunk_peak)
        total = total * torch.exp(peak - new_peak) + torch.exp(logits - new_peak[:, None]).sum(-1)
        peak = new_peak
        inside = (targets >= start) & (targets < start + width)
        at_target = logits.gather(-1, (targets - start).clamp(0, width - 1)[:, None])[:, 0]
        target_logit = torch.where(inside, at_target, target_logit)
    return target_logit - (peak + total.log()), best_column == targets


def softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Gemma-2 style soft-capping of logits, as the model's own forward applies it (``cap`` None: none)."""
    return torch.tanh(logits / cap) * cap if cap else logits


def column_chunks(head: torch.nn.Module, hidden: torch.Tensor, chunk: int,
                  cap: float | None) -> Iterator[tuple[int, torch.Tensor]]:
    """Logits at ``hidden`` a chunk of columns at a time (all at once for a head that is not a plain Linear)."""
    with torch.no_grad():
        if not isinstance(head, torch.nn.Linear):
            yield 0, softcap(head(hidden), cap)
            return
        for start in range(0, head.out_features, chunk):
            columns = slice(start, start + chunk)
            sliced = {name: tensor[columns] for name, tensor in (("weight", head.weight), ("bias", head.bias))
                      if tensor is not None}
            # Through the module, so hooks on the head (a FLOP counter, a profiler) see every projection.
            yield start, softcap(functional_call(head, sliced, (hidden,)), cap)


def score_positions(
    chunks_of: Callable[[torch.Tensor], Iterable[tuple[int, torch.Tensor]]], hidden: torch.Tensor,
    targets: torch.Tensor, rows_per_block: int, dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each position's log-probability of its target and whether the target is the greedy pick.

    ``rows_per_block`` positions share one read of the output matrix; ``chunks_of(block)`` yields its logits.
    """
    logprobs, greedy = [], []
    for start in range(0, hidden.shape[0], rows_per_block):
        rows = slice(start, start + rows_per_block)
        logprob, match = reduce_vocabulary(chunks_of(hidden[rows]), targets[rows], dtype)
        logprobs.append(logprob)
        greedy.append(match)
    return torch.cat(logprobs), torch.cat(greedy)
