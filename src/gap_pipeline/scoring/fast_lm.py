"""An lm-eval model class that gives HFLM's answers in a fraction of its time.

HFLM scores a multiple-choice question by running context + choice once per choice and projecting every
position onto the vocabulary. Here each distinct context runs once: a question is one row holding its context
and all of its choices, each choice masked to see only the context and itself (``batching.PackedChoices``), so a
pass reads many questions at once, and only the positions that are scored are projected onto the vocabulary
(for Gemma-3's 262k-token vocabulary that projection is most of the model). Questions a custom mask cannot
serve (flash-attention kernels; positions beyond a sliding window) read their context once into a KV cache that
each choice continues from. Greedy generation keeps a KV cache too and drops each row from the batch as soon
as it reaches a stop string; its prompts run unpadded, and their caches are kept (within a memory budget) so
that a later log-likelihood request on the same prompt, such as the dialogue tasks' gold-reply loss, runs only
its continuation. Tokenization, truncation, request handling and post-processing are
HFLM's own (this is a subclass), so the predictions are the same up to float rounding.

Packed rows, left-padded caches and explicit positions are sound only for a model whose forward honours the mask
and the positions it is given. ALiBi models (Bloom, MPT) build their biases from a 2-D mask, others derive
positions from the mask. So before its first request FastLM measures, on a short probe, which of its paths
(packed rows, cached contexts, cached generation) give HFLM's own answers on this model, and sends the work of
any path that does not to HFLM's code (``sound_paths``). HFLM projects every position of a batch onto the
vocabulary, so that work runs in batches whose logits fit ``fallback_logits_gb`` (``hflm_loglikelihood``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm.auto import tqdm
from transformers import DynamicCache

from gap_pipeline.scoring.batching import (
    PendingScores,
    Request,
    group_by_context,
    is_left_padded,
    left_pad,
    length_chunks,
    pack_choices,
    packed_length,
    positions_of,
    split_repeats,
)
from gap_pipeline.scoring.kv_cache import PromptCache, PromptState, merge_rows, split_rows
from gap_pipeline.scoring.vocabulary import column_chunks, score_positions, softcap

logger = logging.getLogger(__name__)
PATHS = ("packed", "cached", "generate")
# The probe's words: a context, choices and prompts of a few tokens each, which any tokenizer encodes (the
# tests' word-level tokenizer knows only such words).
PROBE_TEXT = " ".join(f"w{i}" for i in (5, 17, 3, 44, 9, 28, 61, 12, 7, 33, 90, 21, 54))


def fused_masks_unsound(config: Any, device: torch.device) -> bool:
    """Whether our custom masks would go through a fused CUDA attention kernel in a model with sliding-window
    layers, where FastLM's packed rows were measured to differ from HFLM's answers on a few questions that the
    short probe passes (Gemma-3's shape on an H200; eager attention gave HFLM's answers there, and so did SDPA on
    a model without sliding-window layers; benchmarks/README.md, 2026-12-04). The cause is not established, so
    on that combination FastLM runs none of its own paths."""
    text = config.get_text_config(decoder=True)
    return (device.type == "cuda" and getattr(text, "_attn_implementation", None) != "eager"
            and bool(getattr(text, "sliding_window", None)))


@register_model("gap-fast")
class FastLM(HFLM):
    """HFLM with shared-context scoring, scored-position-only vocabulary projection and early-stopping generation."""

    def __init__(self, *args: Any, prompt_cache_gb: float = 2.0, generation_batch_size: int = 64,
                 projection_rows: int = 512, vocabulary_chunk: int = 4096, fallback_logits_gb: float = 1.0,
                 **kwargs: Any):
        """``prompt_cache_gb``: host memory for the prompts kept after generation (0 keeps none).
        ``generation_batch_size``: the fewest rows generated together (``batch_size`` when larger).
        ``projection_rows``: scored positions projected onto the vocabulary together; ``vocabulary_chunk``: the
        columns of the output matrix projected at a time (their logits, ``projection_rows`` x ``vocabulary_chunk``
        floats, are reduced at once; 8 MiB by default, small enough to stay in a CPU's cache).
        ``fallback_logits_gb``: the most one batch's logits may take when HFLM's own code scores what FastLM's
        paths cannot (``hflm_loglikelihood``).

        A decoding step reads every weight to produce one token per row, so its cost hardly grows with the rows
        until the batch is large: generating 64 replies together takes far fewer weight reads than 4 batches
        of 16. lm-eval's CLI passes both as ``--model_args prompt_cache_gb=4,generation_batch_size=32``.
        Beyond the memory budget, prompts are simply read again when asked about; the answers are the same.
        """
        super().__init__(*args, **kwargs)
        self.prompts = PromptCache(int(float(prompt_cache_gb) * 1024**3))
        self.generation_batch_size = int(generation_batch_size)
        self.projection_rows = int(projection_rows)
        self.vocabulary_chunk = int(vocabulary_chunk)
        self.fallback_logits_bytes = int(float(fallback_logits_gb) * 1024**3)
        self._sound: dict[str, bool] | None = None  # measured on the first request: sound_paths()
        for name, value in (("projection_rows", self.projection_rows), ("vocabulary_chunk", self.vocabulary_chunk)):
            if value < 1:
                raise ValueError(f"{name}={value} must be at least 1 (pass e.g. --model_args {name}=512)")
        if self.fallback_logits_bytes <= 0:
            raise ValueError(f"fallback_logits_gb={fallback_logits_gb} must be above 0 (pass e.g. --model_args "
                             "fallback_logits_gb=1)")

    # ----- which paths are sound on this model -------------------------------------------------------------
    def sound_paths(self) -> dict[str, bool]:
        """Per path (``packed``, ``cached``, ``generate``): whether it gives HFLM's answers on this model.

        Measured once, on a probe of a few tokens, against HFLM's own code on the same requests; a path that
        raises or differs beyond float rounding is not used (its work goes to HFLM's code)."""
        if self._sound is None and fused_masks_unsound(self.model.config, self.device):
            self._sound = dict.fromkeys(PATHS, False)
            logger.warning("FastLM on %s (%s) with %s attention on CUDA: custom masks in a model with sliding-window "
                           "layers are not trusted there; all work runs through HFLM's own code (use "
                           "eval.model_class: hf, or load the model with attn_implementation='eager')",
                           self.model.config.model_type, type(self.model).__name__,
                           self.model.config._attn_implementation)
        if self._sound is None:
            self._sound = dict.fromkeys(PATHS, True)  # provisional: each probe runs the path as it would run
            try:
                self._sound = self._probe()
            finally:
                self.prompts.clear()
            unsound = [path for path, ok in self._sound.items() if not ok]
            if unsound:
                logger.warning("FastLM on %s (%s): %s gave other answers than HFLM's on the probe; that work runs "
                               "through HFLM's own code", self.model.config.model_type,
                               type(self.model).__name__, ", ".join(unsound))
        return self._sound

    def _probe(self) -> dict[str, bool]:
        ids = self.tok_encode(PROBE_TEXT)
        ids = (ids * (13 // len(ids) + 1))[:13]  # 13 tokens, whatever the tokenizer made of the words
        # Several choices of several tokens after one context: in a packed row each later choice sits further
        # from the context than its own positions say, which a position scheme that ignores them would see.
        requests: list[Request] = [((None, None), ids[:4], ids[4:7]), ((None, None), ids[:4], ids[7:10]),
                                   ((None, None), ids[:4], ids[10:13]), ((None, None), ids[1:6], ids[6:9])]
        reference = HFLM._loglikelihood_tokens(self, requests, disable_tqdm=True)
        found = {}
        for path in ("packed", "cached"):
            self._sound = {"packed": path == "packed", "cached": path == "cached", "generate": True}
            found[path] = self._agrees(lambda: self._score(requests, True, None, use_kept=False), reference)
        prompts = [self.tok_decode(ids[:3]), self.tok_decode(ids[2:9])]
        probe = [Instance("generate_until", {}, (p, {"until": ["\n\n\n\n"], "max_gen_toks": 5, "do_sample": False}),
                          idx=0) for p in prompts]
        self._sound = found | {"generate": False}
        expected = HFLM.generate_until(self, probe, disable_tqdm=True)
        self._sound = found | {"generate": True}
        found["generate"] = self._agrees(lambda: HFLM.generate_until(self, probe, disable_tqdm=True), expected)
        return found

    def _agrees(self, run: Callable[[], list], reference: list) -> bool:
        """Whether ``run`` gives ``reference``'s answers: equal flags and texts, log-likelihoods within rounding."""
        try:
            got = run()
        except Exception as exc:  # noqa: BLE001 - a path this model's forward cannot take is just not sound
            logger.info("FastLM path failed on this model: %s: %s", type(exc).__name__, exc)
            return False
        for mine, theirs in zip(got, reference, strict=True):
            if isinstance(theirs, str):
                if mine != theirs:
                    return False
            elif mine[1] != theirs[1] or abs(mine[0] - theirs[0]) > self._rounding(theirs[0]):
                return False
        return True

    def _rounding(self, loglikelihood: float) -> float:
        """How far from HFLM's ``loglikelihood`` a sound path may be.

        In float32, 1e-4 of its size (at least 1e-4): HFLM's own float32 answers are that far from float64's on a
        large vocabulary (its log-softmax over the 262,144 logits of every position on Gemma-3), so a fixed 1e-4
        refused paths nearer float64 than HFLM itself (benchmarks/README.md). A path that misreads the mask or
        the positions is off by far more. In lower precisions, 5e-2."""
        return 1e-4 * max(1.0, abs(loglikelihood)) if self.model.dtype == torch.float32 else 5e-2

    # ----- shared pieces ------------------------------------------------------------------------------------
    def _decoder(self, use_cache: bool = True, **inputs: Any):
        """The transformer body without the vocabulary projection: hidden states (and the KV cache)."""
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model.get_decoder()(**inputs, use_cache=use_cache)

    @property
    def _sliding_window(self) -> int | None:
        """Positions a sliding-window layer keeps (None: the model has no such layer)."""
        return getattr(self.model.config.get_text_config(decoder=True), "sliding_window", None)

    @property
    def _cap(self) -> float | None:
        return getattr(self.model.config, "final_logit_softcapping", None)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits at the given hidden states only, as the model's own forward computes them."""
        with torch.no_grad():
            return softcap(self.model.get_output_embeddings()(hidden), self._cap)

    def _vocabulary_chunks(self, hidden: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
        return column_chunks(self.model.get_output_embeddings(), hidden, self.vocabulary_chunk, self._cap)

    def _score_positions(self, hidden: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each position's log-probability of its target, and whether the target is the greedy pick."""
        dtype = self.softmax_dtype or torch.float32  # at least float32 for the running sums, as HFLM's float32
        return score_positions(self._vocabulary_chunks, hidden, targets, self.projection_rows, dtype)

    def _flush(self, pending: PendingScores, results: list[tuple[float, bool] | None]) -> None:
        """Project the queued positions and record each request's summed log-probability and greedy match."""
        if not pending.rows:
            return
        hidden, targets, owners = pending.take()
        logprobs, greedy = self._score_positions(hidden, targets)
        for request, logprob, match in zip(owners, logprobs.tolist(), greedy.tolist(), strict=True):
            total, all_greedy = results[request] or (0.0, True)
            results[request] = (total + logprob, all_greedy and match)

    def _read(self, rows: Sequence[Sequence[int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """One pass over left-padded ``rows``: their cache, attention mask and last hidden states."""
        ids, mask, positions = left_pad(rows, self._pad_id(), self.device)
        body = self._decoder(input_ids=ids, attention_mask=mask, position_ids=positions)
        return body.cache, mask, body.last_hidden_state[:, -1]

    def _merge(self, states: Sequence[PromptState]) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        """Kept prompts as one batch, as ``_read`` would return it."""
        cache, mask = merge_rows([s.layers for s in states], self.model.config)
        return cache, mask, torch.stack([s.last_hidden for s in states])

    # ----- multiple choice: loglikelihood -------------------------------------------------------------------
    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        sound = self.sound_paths()
        if not (sound["packed"] or sound["cached"]):
            return self.hflm_loglikelihood(requests, disable_tqdm, override_bs)
        return self._score(requests, disable_tqdm, override_bs)

    def hflm_loglikelihood(self, requests: list[Request], disable_tqdm: bool = False,
                           override_bs: int | None = None) -> list[tuple[float, bool]]:
        """HFLM's own answers to ``requests``, in batches whose logits take at most ``fallback_logits_gb``.

        HFLM projects every position of a batch onto the vocabulary and takes its log-softmax, two tensors of
        rows x longest row x vocabulary: for Gemma-3's 262,144-token vocabulary, 16 rows of 700 tokens are
        16 x 700 x 262,144 float32 values, 12 GB each, beyond a 24 GB machine. So requests are grouped by how
        many rows of their length fit the budget (at most ``batch_size``, at least one) and each group is one
        HFLM call with that batch size: a function of the lengths alone, not of the machine's free memory.
        """
        configured = self.batch_size_per_gpu
        if not isinstance(configured, int) or not requests:  # "auto" stays HFLM's own search
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        limit = max(1, int(override_bs or configured))
        position_bytes = self.model.get_output_embeddings().weight.shape[0] * max(4, self.model.dtype.itemsize)
        groups: dict[int, list[int]] = {}
        for i, (_, context, continuation) in enumerate(requests):
            length = min(len(context) + len(continuation), self.max_length + 1) - 1  # HFLM's input length
            rows = max(1, min(limit, self.fallback_logits_bytes // (length * position_bytes)))
            groups.setdefault(rows, []).append(i)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Running loglikelihood requests")
        try:
            for rows, members in sorted(groups.items()):
                self.batch_size_per_gpu = rows
                answers = super()._loglikelihood_tokens([requests[i] for i in members], True)
                for i, answer in zip(members, answers, strict=True):
                    results[i] = answer
                bar.update(len(members))
        finally:
            self.batch_size_per_gpu = configured
            bar.close()
        return results  # type: ignore[return-value]

    def _score(self, requests: list[Request], disable_tqdm: bool, override_bs: int | None, use_kept: bool = True
               ) -> list[tuple[float, bool]]:
        """Each request's summed log-probability and greedy flag, by the sound paths; the rest by HFLM's code."""
        sound = self.sound_paths()
        groups, repeats = split_repeats(group_by_context(requests, self.max_length), requests)
        kept = self.prompts.take(groups) if use_kept and sound["cached"] else {}  # read during generation
        fresh = [c for c in groups if c not in kept]
        continuations = {c: [requests[i][2] for i in groups[c]] for c in fresh}
        packed = [c for c in fresh if sound["packed"] and self._packable(c, continuations[c])]
        packable = set(packed)
        cached = [c for c in fresh if c not in packable]  # read once, each choice continuing from its cache
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        if not sound["cached"]:  # what packed rows cannot serve goes to HFLM's own code
            others = [i for c in cached for i in groups[c]]
            for i, answer in zip(others, self.hflm_loglikelihood([requests[i] for i in others], True), strict=True):
                results[i] = answer
            cached = []
        per_batch = max(1, int(override_bs or self.batch_size))  # contexts per pass, each with all its choices
        pending = PendingScores.empty()
        bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Scoring choices (shared context)")
        # Rows of similar length share a pass, so little of it is padding; the longest go first.
        lengths = [packed_length(c, continuations[c]) for c in packed]
        passes = [("packed", [packed[i] for i in chunk]) for chunk in length_chunks(lengths, max_rows=per_batch)]
        passes += [("cached", [cached[i] for i in chunk])
                   for chunk in length_chunks([len(c) for c in cached], max_rows=per_batch)]
        reused = sorted(kept, key=len)
        passes += [("kept", reused[first : first + per_batch]) for first in range(0, len(reused), per_batch)]
        for how, contexts in passes:
            if how == "packed":
                bar.update(self._score_packed(contexts, groups, requests, pending))
            else:
                read = self._merge([kept[c] for c in contexts]) if how == "kept" else self._read(contexts)
                bar.update(self._score_contexts(contexts, read, groups, requests, pending))
            if pending.rows >= self.projection_rows:
                self._flush(pending, results)
        self._flush(pending, results)
        for repeat, first in repeats.items():
            results[repeat] = results[first]
        bar.update(len(repeats))
        bar.close()
        for (request_str, _, _), answer in zip(requests, results, strict=True):
            if request_str is not None:
                self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return results  # type: ignore[return-value]

    def _packable(self, context: tuple[int, ...], continuations: Sequence[Sequence[int]]) -> bool:
        """Whether a question can be read as one packed row.

        Its mask must reach the attention as given (flash-attention kernels take none), and every position must
        lie inside a sliding-window layer's window, where the window, not our mask, would decide what is seen.
        """
        if self.model.config._attn_implementation not in ("sdpa", "eager"):
            return False
        window = self._sliding_window
        return not window or len(context) + max(len(c) - 1 for c in continuations) <= window - 1

    def _score_packed(self, contexts, groups, requests, pending: PendingScores) -> int:
        """Queue every scored position of ``contexts``' requests, read in one pass of packed rows."""
        packed = pack_choices(contexts, groups, requests, self._pad_id())
        allowed = packed.attention().to(self.device)
        if self.model.config._attn_implementation == "eager":  # eager attention adds its mask to the scores
            dtype = self.model.dtype
            allowed = torch.zeros(allowed.shape, dtype=dtype, device=self.device).masked_fill(
                ~allowed, torch.finfo(dtype).min)
        hidden = self._decoder(input_ids=packed.ids.to(self.device), attention_mask=allowed,
                               position_ids=packed.positions.to(self.device), use_cache=False).last_hidden_state
        pending.extend(hidden.flatten(0, 1)[packed.scored.to(self.device)], packed.targets, packed.owners)
        return sum(len(groups[c]) for c in contexts)

    def _score_contexts(self, contexts, read, groups, requests, pending: PendingScores) -> int:
        """Queue every scored position of ``contexts``' requests, the contexts already read into ``read``."""
        cache, mask, last_hidden = read  # last_hidden predicts each continuation's first token
        rows = [(c, i) for c, context in enumerate(contexts) for i in groups[context]]
        continuations = [requests[i][2] for _, i in rows]
        # Continuations differ in length: run them in chunks of similar length so little is padding.
        owner = torch.tensor([c for c, _ in rows], device=self.device)
        lengths = mask.sum(-1)
        chunks = length_chunks([len(cont) - 1 for cont in continuations])
        rest: dict[int, torch.Tensor] = {}
        for n, chunk in enumerate(chunks):
            part = cache if n == len(chunks) - 1 else copy.deepcopy(cache)
            rest.update(self._read_rest(part, mask, lengths, owner[chunk], [continuations[r] for r in chunk], chunk))
        for r, ((c, index), cont) in enumerate(zip(rows, continuations, strict=True)):
            hidden = torch.cat([last_hidden[c : c + 1], rest[r]]) if len(cont) > 1 else last_hidden[c : c + 1]
            pending.add(index, hidden, cont)
        return len(rows)

    def _read_rest(self, cache, mask, lengths, owner, continuations, rows) -> dict[int, torch.Tensor]:
        """Hidden states at every continuation token but the last (each predicts the next), given the cache."""
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
                               cache=cache).last_hidden_state
        # Keep only the real continuation positions, not the padding after shorter choices.
        return dict(zip(rows, hidden[real.to(self.device)].split([len(c) - 1 for c in continuations]), strict=True))

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.eot_token_id

    # ----- dialogue: greedy generation ----------------------------------------------------------------------
    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.prompts.clear()  # keep only this call's prompts: those a following loglikelihood call may ask about
        configured = self.batch_size_per_gpu
        if isinstance(configured, int):  # "auto" stays HFLM's own search
            self.batch_size_per_gpu = max(configured, self.generation_batch_size)
        try:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        finally:
            self.batch_size_per_gpu = configured

    def _read_prompts(self, rows: Sequence[Sequence[int]]) -> list[PromptState] | None:
        """Each prompt read in chunks of similar length, not padded to the batch's longest as HFLM pads it.

        None when per-row caches cannot be had: an empty prompt, or one longer than a sliding-window layer keeps.
        """
        window = self._sliding_window
        if not self.sound_paths()["cached"] or min(map(len, rows)) == 0:
            return None
        if window and max(map(len, rows)) > window - 1:
            return None
        states: list[PromptState | None] = [None] * len(rows)
        for chunk in length_chunks([len(r) for r in rows]):
            part = [rows[i] for i in chunk]
            cache, _, last_hidden = self._read(part)
            layers = split_rows(cache, [len(r) for r in part])
            if layers is None:
                return None
            for i, row_layers, hidden in zip(chunk, layers, last_hidden, strict=True):
                states[i] = PromptState(row_layers, hidden.clone())
        return states  # type: ignore[return-value]

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        """Greedy decoding with a KV cache; a row leaves the batch once it reaches a stop string or EOS."""
        sampled = generation_kwargs.get("do_sample") or generation_kwargs.get("num_beams", 1) != 1
        if sampled or not self.sound_paths()["generate"]:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        mask = generation_kwargs.get("attention_mask")
        mask = torch.ones_like(context) if mask is None else mask
        rows = [context[i, mask[i].bool()].tolist() for i in range(context.shape[0])]
        states = self._read_prompts(rows) if is_left_padded(mask) else None
        if states is None:  # read the batch as HFLM pads it
            body = self._decoder(input_ids=context, attention_mask=mask, position_ids=positions_of(mask))
            cache, last_hidden = body.cache, body.last_hidden_state[:, -1]
        else:
            self.prompts.keep(rows, states)
            cache, mask, last_hidden = self._merge(states)
        positions = positions_of(mask)[:, -1:]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        new_tokens = max_length - context.shape[1]
        generated: list[list[int]] = [[] for _ in range(context.shape[0])]
        active = torch.arange(context.shape[0], device=context.device)
        for step in range(new_tokens):
            next_tokens = self._logits(last_hidden).argmax(-1)  # greedy, as generate() picks it: no softmax
            done = []
            for row, token in zip(active.tolist(), next_tokens.tolist(), strict=True):
                generated[row].append(token)
                text = self.tokenizer.decode(generated[row])
                done.append(token in eos_ids or any(s in text for s in stop))
            keep = torch.tensor([not d for d in done], device=context.device)
            if not keep.any() or step == new_tokens - 1:
                break
            if not keep.all():
                cache.batch_select_indices(keep.nonzero().squeeze(-1))
                active, mask, next_tokens, positions = active[keep], mask[keep], next_tokens[keep], positions[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            positions = positions + 1
            body = self._decoder(input_ids=next_tokens[:, None], attention_mask=mask, position_ids=positions,
                                 cache=cache)
            cache, last_hidden = body.cache, body.last_hidden_state[:, -1]
        width = max(len(g) for g in generated)
        out = torch.full((context.shape[0], context.shape[1] + width), self._pad_id(), dtype=torch.long)
        out[:, : context.shape[1]] = context.cpu()
        for row, tokens in enumerate(generated):
            out[row, context.shape[1] : context.shape[1] + len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return out.to(context.device)
