"""How FastLM cuts requests into forward passes: one pass per distinct context, rows of similar length together.

Pure bookkeeping on token ids and small tensors; the model itself is run by ``fast_lm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

Request = tuple[tuple[str, str], list[int], list[int]]


def fit_context(context: list[int], continuation_length: int, max_length: int) -> tuple[int, ...]:
    """The context with tokens dropped from the left as HFLM does, so context + continuation[:-1] fits."""
    excess = len(context) + continuation_length - (max_length + 1)
    if excess > 0:
        if excess >= len(context):
            raise ValueError(f"a continuation of {continuation_length} tokens leaves no room for context "
                             f"in a {max_length}-token window")
        context = context[excess:]
    return tuple(context)


def group_by_context(requests: Sequence[Request], max_length: int) -> dict[tuple[int, ...], list[int]]:
    """Request indices keyed by their (window-fitted) context: each key is run through the model once."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, (_, context, continuation) in enumerate(requests):
        groups.setdefault(fit_context(context, len(continuation), max_length), []).append(index)
    return groups


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Token ids, attention mask and position ids of left-padded rows (each row's positions start at 0)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device), positions_of(mask).to(device)


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded rows: each row's first real token is position 0 (padding clamps to 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def is_left_padded(mask: torch.Tensor) -> bool:
    """Whether every row's real tokens are its last ones, as HFLM pads a decoder-only model's prompts."""
    width = mask.shape[-1]
    expected = torch.arange(width, device=mask.device) >= width - mask.sum(-1, keepdim=True)
    return bool((mask.bool() == expected).all())


def length_chunks(lengths: Sequence[int], max_rows: int | None = None, pass_cost: int = 48) -> list[list[int]]:
    """Indices of ``lengths`` cut into chunks that minimise padded tokens plus ``pass_cost`` per chunk.

    Each chunk is one forward pass padded to its longest row; a pass also costs a fixed amount (reading every
    weight once, roughly ``pass_cost`` tokens' worth of compute on a CPU), so neither one row per pass nor one
    pass for all is best. Rows sorted by length make the optimal cut a simple dynamic programme. Rows of
    length 0 need no pass and are left out; ``max_rows`` caps a chunk's rows (memory).
    """
    order = sorted((i for i, n in enumerate(lengths) if n > 0), key=lambda i: -lengths[i])
    best = [0.0] + [float("inf")] * len(order)  # best[j]: cost of the first j rows
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(max(0, j - max_rows) if max_rows else 0, j):  # rows i..j-1: the last chunk
            cost = best[i] + pass_cost + lengths[order[i]] * (j - i)
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks, j = [], len(order)
    while j > 0:
        chunks.append(order[cut[j] : j])
        j = cut[j]
    return chunks[::-1]


@dataclass
class PendingScores:
    """Scored positions waiting for the vocabulary projection: their hidden states, targets and requests.

    Every projection reads the whole output matrix (671 MB for Gemma-3's 262k-token vocabulary), so a handful
    of rows at a time leaves the multiply waiting on memory. Positions from many contexts and continuations
    are collected here and projected together, in blocks of a few hundred rows.
    """

    hidden: list[torch.Tensor]
    targets: list[int]
    owners: list[int]  # the request each position belongs to

    @classmethod
    def empty(cls) -> PendingScores:
        return cls([], [], [])

    @property
    def rows(self) -> int:
        return len(self.targets)

    def add(self, request: int, hidden: torch.Tensor, targets: Sequence[int]) -> None:
        """Queue one request's positions: ``hidden[k]`` predicts ``targets[k]``."""
        self.hidden.append(hidden)
        self.targets.extend(targets)
        self.owners.extend([request] * len(targets))

    def take(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """All queued positions as one batch (hidden states, targets, owners); the queue is left empty."""
        hidden = torch.cat(self.hidden)
        targets = torch.tensor(self.targets, device=hidden.device)
        owners = self.owners
        self.hidden, self.targets, self.owners = [], [], []
        return hidden, targets, owners
