"""How FastLM cuts requests into forward passes: each distinct context read once, rows of similar length together.

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


def split_repeats(
    groups: dict[tuple[int, ...], list[int]], requests: Sequence[Request]
) -> tuple[dict[tuple[int, ...], list[int]], dict[int, int]]:
    """Groups without repeated continuations, and each repeat's first request (``{repeat: first}``).

    Some questions list the same choice twice (mathqa has such questions). HFLM scores both copies to the same bits,
    so the argmax picks the first; scored at different places in a packed row they could round apart and the
    later copy win. Scoring each distinct continuation once, and giving its repeats the same answer, keeps
    HFLM's pick and saves the work.
    """
    unique: dict[tuple[int, ...], list[int]] = {}
    repeats: dict[int, int] = {}
    for context, indices in groups.items():
        first: dict[tuple[int, ...], int] = {}
        for index in indices:
            continuation = tuple(requests[index][2])
            if continuation in first:
                repeats[index] = first[continuation]
            else:
                first[continuation] = index
                unique.setdefault(context, []).append(index)
    return unique, repeats


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
        self.extend(hidden, targets, [request] * len(targets))

    def extend(self, hidden: torch.Tensor, targets: Sequence[int], owners: Sequence[int]) -> None:
        """Queue many requests' positions at once: ``hidden[k]`` predicts ``targets[k]`` for ``owners[k]``."""
        self.hidden.append(hidden)
        self.targets.extend(targets)
        self.owners.extend(owners)

    def take(self) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """All queued positions as one batch (hidden states, targets, owners); the queue is left empty."""
        hidden = torch.cat(self.hidden)
        targets = torch.tensor(self.targets, device=hidden.device)
        owners = self.owners
        self.hidden, self.targets, self.owners = [], [], []
        return hidden, targets, owners


@dataclass
class PackedChoices:
    """Questions laid out one per row: the context, then every choice but its last token, side by side.

    A choice attends to the context and to itself, never to the choices before it in the row, and its positions
    continue from the context's, so each choice is scored as if it followed the context alone. One pass then
    reads a context once and all of its choices with it: the same work as reading the context and continuing
    from its cache once per choice, in one large pass instead of several small ones and without copying caches.
    """

    ids: torch.Tensor  # [rows, width] token ids, right-padded
    positions: torch.Tensor  # [rows, width]
    segments: torch.Tensor  # [rows, width]: 0 the context, k the row's k-th choice, -1 padding
    scored: torch.Tensor  # flat indices into rows x width of the positions that predict ``targets``
    targets: list[int]
    owners: list[int]  # the request each target belongs to

    def attention(self) -> torch.Tensor:
        """``[rows, 1, width, width]``, True where a query may attend a key (padding attends the context)."""
        query, key = self.segments[:, :, None], self.segments[:, None, :]
        width = self.segments.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=self.segments.device).tril()
        return (causal & (key >= 0) & ((key == 0) | (key == query)))[:, None]


def packed_length(context: Sequence[int], continuations: Sequence[Sequence[int]]) -> int:
    """A packed row's tokens: the context and every continuation but its last token."""
    return len(context) + sum(len(c) - 1 for c in continuations)


def pack_choices(
    contexts: Sequence[tuple[int, ...]], groups: dict[tuple[int, ...], list[int]], requests: Sequence[Request],
    pad_id: int,
) -> PackedChoices:
    """One row per context with all of its requests' continuations (see ``PackedChoices``)."""
    lengths = [packed_length(c, [requests[i][2] for i in groups[c]]) for c in contexts]
    width = max(lengths)
    ids = torch.full((len(contexts), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(contexts), width), dtype=torch.long)
    segments = torch.full((len(contexts), width), -1, dtype=torch.long)
    scored: list[int] = []
    targets: list[int] = []
    owners: list[int] = []
    for row, context in enumerate(contexts):
        if not context:
            raise ValueError("an empty context has no position to predict its continuation's first token from")
        start = row * width
        ids[row, : len(context)] = torch.tensor(context, dtype=torch.long)
        positions[row, : len(context)] = torch.arange(len(context))
        segments[row, : len(context)] = 0
        at = len(context)
        for k, index in enumerate(groups[context], start=1):
            continuation = requests[index][2]
            body = len(continuation) - 1  # its last token is predicted, never read
            ids[row, at : at + body] = torch.tensor(continuation[:-1], dtype=torch.long)
            positions[row, at : at + body] = torch.arange(len(context), len(context) + body)
            segments[row, at : at + body] = k
            # The context's last position predicts the first token; each read choice token predicts the next.
            scored += [start + len(context) - 1, *range(start + at, start + at + body)]
            targets += continuation
            owners += [index] * len(continuation)
            at += body
    return PackedChoices(ids, positions, segments, torch.tensor(scored, dtype=torch.long), targets, owners)
