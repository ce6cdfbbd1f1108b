"""An lm-eval model class that gives HFLM's answers in a fraction of its time.

HFLM scores a multiple-choice question by running context + choice once per choice and projecting every
position onto the vocabulary. Here each distinct context runs once and its key/value cache is shared by all
of its choices, and only the positions that are scored are projected onto the vocabulary (for Gemma-3's
262k-token vocabulary that projection is most of the model). Greedy generation keeps a KV cache too and drops
each row from the batch as soon as it reaches a stop string. Tokenization, truncation, request handling and
post-processing are HFLM's own (this is a subclass), so the predictions are the same up to float rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm.auto import tqdm

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


@register_model("gap-fast")
class FastLM(HFLM):
    """HFLM with shared-context scoring, scored-position-only vocabulary projection and early-stopping generation."""

    # ----- shared pieces ------------------------------------------------------------------------------------
    def _decoder(self, **inputs: Any):
        """The transformer body without the vocabulary projection: hidden states and the KV cache."""
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model.get_decoder()(**inputs, use_cache=True)

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over the vocabulary at the given hidden states only, as HFLM computes them."""
        with torch.no_grad():
            logits = self.model.get_output_embeddings()(hidden)
            cap = getattr(self.model.config, "final_logit_softcapping", None)
            if cap:  # Gemma-2 style soft-capping, applied in the model's own forward
                logits = torch.tanh(logits / cap) * cap
            return F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)

    # ----- multiple choice: loglikelihood -------------------------------------------------------------------
    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        groups = group_by_context(requests, self.max_length)
        contexts = list(groups)
        per_batch = max(1, int(override_bs or self.batch_size))  # contexts per pass, each with all its choices
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Scoring choices (shared context)")
        # Contexts of similar length share a pass, so little of it is padding; the longest go first.
        for chunk in length_chunks([len(c) for c in contexts], max_rows=per_batch):
            bar.update(self._score_contexts([contexts[i] for i in chunk], groups, requests, results))
        bar.close()
        for (request_str, _, _), answer in zip(requests, results, strict=True):
            if request_str is not None:
                self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return results  # type: ignore[return-value]

    def _score_contexts(self, contexts, groups, requests, results) -> int:
        """Score every request of ``contexts``: one pass over the contexts, one over all their continuations."""
        ids, mask, positions = left_pad(contexts, self._pad_id(), self.device)
        body = self._decoder(input_ids=ids, attention_mask=mask, position_ids=positions)
        first = self._project(body.last_hidden_state[:, -1])  # predicts each continuation's first token
        rows = [(c, i) for c, context in enumerate(contexts) for i in groups[context]]
        continuations = [requests[i][2] for _, i in rows]
        # Continuations differ in length: run them in chunks of similar length so little is padding.
        owner = torch.tensor([c for c, _ in rows], device=self.device)
        lengths = mask.sum(-1)
        chunks = length_chunks([len(cont) - 1 for cont in continuations])
        rest: dict[int, torch.Tensor] = {}
        for n, chunk in enumerate(chunks):
            cache = body.past_key_values if n == len(chunks) - 1 else copy.deepcopy(body.past_key_values)
            rest.update(self._score_rest(cache, mask, lengths, owner[chunk], [continuations[r] for r in chunk], chunk))
        for r, ((c, index), cont) in enumerate(zip(rows, continuations, strict=True)):
            scored = torch.cat([first[c : c + 1], rest[r]]) if len(cont) > 1 else first[c : c + 1]
            target = torch.tensor(cont, device=self.device)
            logprob = scored.gather(-1, target[:, None]).sum()
            results[index] = (float(logprob), bool((scored.argmax(-1) == target).all()))
        return len(rows)

    def _score_rest(self, cache, mask, lengths, owner, continuations, rows) -> dict[int, torch.Tensor]:
        """Log-probabilities of every continuation token after the first, given its context's cache."""
        width = max(len(cont) for cont in continuations) - 1
        cache.batch_select_indices(owner)  # each choice gets its own copy of its context's cache
        inputs = torch.full((len(owner), width), self._pad_id(), dtype=torch.long)
        real = torch.zeros((len(owner), width), dtype=torch.bool)
        for r, cont in enumerate(continuations):
            inputs[r, : len(cont) - 1] = torch.tensor(cont[:-1], dtype=torch.long)
            real[r, : len(cont) - 1] = True
        positions = lengths[owner][:, None] + torch.arange(width, device=self.device)
        full_mask = torch.cat([mask[owner], real.to(self.device, torch.long)], dim=-1)
        hidden = self._decoder(input_ids=inputs.to(self.device), attention_mask=full_mask, position_ids=positions,
                               past_key_values=cache).last_hidden_state
        # Project only the real continuation positions, not the padding after shorter choices.
        projected = self._project(hidden[real.to(self.device)]).split([len(c) - 1 for c in continuations])
        return dict(zip(rows, projected, strict=True))

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.eot_token_id

    # ----- dialogue: greedy generation ----------------------------------------------------------------------
    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        """Greedy decoding with a KV cache; a row leaves the batch once it reaches a stop string or EOS."""
        if generation_kwargs.get("do_sample") or generation_kwargs.get("num_beams", 1) != 1:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        mask = generation_kwargs.get("attention_mask")
        mask = torch.ones_like(context) if mask is None else mask
        positions = positions_of(mask)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        new_tokens = max_length - context.shape[1]
        generated: list[list[int]] = [[] for _ in range(context.shape[0])]
        active = torch.arange(context.shape[0], device=context.device)
        body = self._decoder(input_ids=context, attention_mask=mask, position_ids=positions)
        for step in range(new_tokens):
            next_tokens = self._project(body.last_hidden_state[:, -1]).argmax(-1)
            done = []
            for row, token in zip(active.tolist(), next_tokens.tolist(), strict=True):
                generated[row].append(token)
                text = self.tokenizer.decode(generated[row])
                done.append(token in eos_ids or any(s in text for s in stop))
            keep = torch.tensor([not d for d in done], device=context.device)
            if not keep.any() or step == new_tokens - 1:
                break
            cache = body.past_key_values
            if not keep.all():
                cache.batch_select_indices(keep.nonzero().squeeze(-1))
                active, mask, next_tokens = active[keep], mask[keep], next_tokens[keep]
                positions = positions[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            positions = positions[:, -1:] + 1
            body = self._decoder(input_ids=next_tokens[:, None], attention_mask=mask, position_ids=positions,
                                 past_key_values=cache)
        width = max(len(g) for g in generated)
        out = torch.full((context.shape[0], context.shape[1] + width), self._pad_id(), dtype=torch.long)
        out[:, : context.shape[1]] = context.cpu()
        for row, tokens in enumerate(generated):
            out[row, context.shape[1] : context.shape[1] + len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return out.to(context.device)
