"""Keys and values of prompts the model has read: split per row, merged into a batch, kept for a later request.

Generation reads each prompt once; the dialogue tasks then ask for the gold reply's log-likelihood given the same
prompt. ``PromptCache`` keeps what generation read (within a memory budget) so that request runs only the reply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

LayerKV = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class PromptState:
    """One prompt after the model has read it: each layer's keys and values (no padding) and the last hidden state.

    It is all a continuation needs: the next token's distribution comes from ``last_hidden``, and the tokens
    after it attend to ``layers``.
    """

    layers: list[LayerKV]
    last_hidden: torch.Tensor

    @property
    def length(self) -> int:
        return self.layers[0][0].shape[-2]

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.layers) + self.last_hidden.nbytes


def split_rows(cache: Any, lengths: Sequence[int]) -> list[list[LayerKV]] | None:
    """Each left-padded row's keys and values without its padding, copied out of a batch's cache.

    None when the cache cannot be split: not a ``DynamicCache``, or a layer holds fewer positions than the
    batch (a sliding-window layer has already dropped the oldest ones).
    """
    width = max(lengths)
    layers = getattr(cache, "layers", None)
    if not isinstance(cache, DynamicCache) or not layers or any(
        getattr(layer, "keys", None) is None or layer.keys.shape[-2] != width for layer in layers
    ):
        return None
    return [
        [(layer.keys[i : i + 1, :, width - n :].clone(), layer.values[i : i + 1, :, width - n :].clone())
         for layer in layers]
        for i, n in enumerate(lengths)
    ]


def merge_rows(rows: Sequence[Sequence[LayerKV]], config: Any) -> tuple[DynamicCache, torch.Tensor]:
    """One left-padded batch cache from per-row keys and values, and its attention mask."""
    lengths = [row[0][0].shape[-2] for row in rows]
    width = max(lengths)
    data = []
    for layer in range(len(rows[0])):
        merged = []
        for part in (0, 1):  # keys, values
            first = rows[0][layer][part]
            out = first.new_zeros((len(rows), first.shape[1], width, first.shape[3]))
            for i, row in enumerate(rows):
                out[i, :, width - lengths[i] :] = row[layer][part][0]
            merged.append(out)
        data.append(tuple(merged))
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=rows[0][0][0].device)
    for i, n in enumerate(lengths):
        mask[i, width - n :] = 1
    return DynamicCache(ddp_cache_data=data, config=config), mask


class PromptCache:
    """Prompts read during one generation call, by token ids, up to ``budget_bytes`` of host memory.

    Filled by generation and emptied by the next loglikelihood call that asks for the same prompts; beyond the
    budget a prompt is simply read again when asked about, with the same answer.
    """

    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self._states: dict[tuple[int, ...], PromptState] = {}

    def __len__(self) -> int:
        return len(self._states)

    def clear(self) -> None:
        self._states.clear()

    def keep(self, rows: Sequence[Sequence[int]], states: Sequence[PromptState]) -> None:
        """Keep read prompts in order until the budget is spent."""
        used = sum(s.nbytes for s in self._states.values())
        for row, state in zip(rows, states, strict=True):
            if used + state.nbytes > self.budget_bytes:
                break
            self._states[tuple(row)] = state
            used += state.nbytes

    def take(self, contexts: Iterable[tuple[int, ...]]) -> dict[tuple[int, ...], PromptState]:
        """The kept states of ``contexts`` (those there are), removed from the cache: each is used once."""
        return {c: self._states.pop(c) for c in contexts if c in self._states}
