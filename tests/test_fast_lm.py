"""FastLM must give HFLM's answers: same log-likelihoods (to 1e-4), same greedy flags, same generated text."""

import copy
import random
import warnings

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_model
from lm_eval.models.huggingface import HFLM
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from gap_pipeline.scoring.batching import (
    fit_context,
    group_by_context,
    is_left_padded,
    pack_choices,
    split_repeats,
)
from gap_pipeline.scoring.fast_lm import FastLM
from gap_pipeline.scoring.kv_cache import merge_rows, split_rows
from gap_pipeline.scoring.vocabulary import reduce_vocabulary


def _words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randint(1, 127)}" for _ in range(n))


@pytest.fixture
def models(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    fast = FastLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=3)
    # Its paths measured before a test replaces any of them: on this Llama every one is sound.
    assert fast.sound_paths() == {"packed": True, "cached": True, "generate": True}
    return HFLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=3), fast


def _multiple_choice_requests() -> list[Instance]:
    """Questions of different lengths with 1-5 choices of 1-9 tokens; one context longer than the window."""
    rng = random.Random(0)
    requests = []
    for question, context_len in enumerate([3, 12, 7, 30, 1, 70, 12]):
        context = _words(rng, context_len)
        for _ in range(rng.randint(1, 5)):
            choice = " " + _words(rng, rng.randint(1, 9))
            requests.append(Instance("loglikelihood", {}, (context, choice), idx=question))
    return requests


def test_loglikelihoods_and_greedy_flags_match_hflm(models):
    hflm, fast = models
    requests = _multiple_choice_requests()
    expected, got = hflm.loglikelihood(requests), fast.loglikelihood(requests)
    assert len(got) == len(requests) > 15
    for (ll_ref, greedy_ref), (ll, greedy) in zip(expected, got, strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref


def _match_hflm(hflm: HFLM, fast: FastLM, requests: list[Instance]) -> None:
    for (ll_ref, greedy_ref), (ll, greedy) in zip(hflm.loglikelihood(requests), fast.loglikelihood(requests),
                                                  strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref


def test_each_question_is_one_packed_row_and_no_cache_is_read(models):
    """The seven contexts are read in packed passes only: no context pass, no continuation from a cache."""
    hflm, fast = models
    packed: list[int] = []
    fast._read = lambda rows: pytest.fail("a context was read into a cache")
    fast._score_packed = lambda contexts, *args, score=fast._score_packed: packed.append(len(contexts)) or score(
        contexts, *args)
    _match_hflm(hflm, fast, _multiple_choice_requests())
    assert sum(packed) == 7 and max(packed) <= fast.batch_size


@pytest.mark.parametrize("path", ["cached", "eager"])
def test_the_other_paths_give_hflms_answers(models, path):
    """A context read once and continued from its cache per choice (models whose attention takes no mask of
    ours), and packed rows under eager attention, which adds a float mask instead of taking a boolean one."""
    hflm, fast = models
    if path == "cached":
        fast._packable = lambda *args: False
        fast._score_packed = lambda *args: pytest.fail("packed although not packable")
    else:
        fast.model.set_attn_implementation("eager")
        assert fast._packable((1,), [[2, 3]])
    _match_hflm(hflm, fast, _multiple_choice_requests())


def test_a_repeated_choice_gets_the_same_answer_as_its_first_copy(models):
    # mathqa lists the same choice twice in some questions: HFLM's copies tie to the bit and argmax keeps the
    # first; ours must not let a later copy round above it, and need not score it twice.
    hflm, fast = models
    context = "w5 w9 w17 w3"
    choices = [" w8 w2 w40", " w11 w2", " w8 w2 w40", " w7", " w11 w2"]
    requests = [Instance("loglikelihood", {}, (context, c), idx=0) for c in choices]
    read: list = []  # the shape of every pass
    hook = fast.model.get_decoder().register_forward_pre_hook(
        lambda module, args, kwargs: read.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    got = fast.loglikelihood(requests)
    hook.remove()
    assert got[2] == got[0] and got[4] == got[1]  # the same floats, not merely close ones
    _match_hflm(hflm, fast, requests)
    context_tokens = len(fast.tok_encode(context))
    distinct = [fast.tok_encode(context + c)[context_tokens:] for c in choices[:2] + choices[3:4]]
    assert read == [(1, context_tokens + sum(len(d) - 1 for d in distinct))]  # one row, each choice read once


def test_split_repeats_maps_each_repeat_to_its_first_copy():
    requests = [(("a", "x"), [1, 2], [5]), (("a", "y"), [1, 2], [6, 7]), (("a", "x"), [1, 2], [5]),
                (("b", "x"), [3], [5]), (("a", "y"), [1, 2], [6, 7])]
    groups, repeats = split_repeats(group_by_context(requests, 100), requests)
    assert groups == {(1, 2): [0, 1], (3,): [3]}  # the same choice under another context is no repeat
    assert repeats == {2: 0, 4: 1}


def test_pack_choices_lays_out_each_context_with_its_choices():
    # Context (1, 2, 3) with choices [4, 5] and [6]; context (7,) with choice [8, 9, 10].
    requests = [(("", ""), [1, 2, 3], [4, 5]), (("", ""), [7], [8, 9, 10]), (("", ""), [1, 2, 3], [6])]
    groups = group_by_context(requests, max_length=16)
    packed = pack_choices(list(groups), groups, requests, pad_id=0)
    # Row 0: context, then choice 1 without its last token (4), then choice 2 (nothing: one token). Row 1: 7 8 9.
    assert packed.ids.tolist() == [[1, 2, 3, 4], [7, 8, 9, 0]]
    assert packed.positions.tolist() == [[0, 1, 2, 3], [0, 1, 2, 0]]
    assert packed.segments.tolist() == [[0, 0, 0, 1], [0, 1, 1, -1]]
    # Request 0: 4 predicted at index 2 (the context's last), 5 at index 3; request 2: 6 at index 2;
    # request 1 (row 1 starts at flat index 4): 8 at 4, 9 at 5, 10 at 6.
    assert packed.scored.tolist() == [2, 3, 2, 4, 5, 6]
    assert packed.targets == [4, 5, 6, 8, 9, 10] and packed.owners == [0, 0, 2, 1, 1, 1]
    attention = packed.attention()
    assert attention.shape == (2, 1, 4, 4)
    assert attention[1, 0].int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]]


def test_choices_see_the_context_and_themselves_only():
    requests = [(("", ""), [1, 2], [3, 4, 5]), (("", ""), [1, 2], [6, 7])]
    groups = group_by_context(requests, max_length=16)
    packed = pack_choices(list(groups), groups, requests, pad_id=0)
    assert packed.segments.tolist() == [[0, 0, 1, 1, 2]]
    assert packed.positions.tolist() == [[0, 1, 2, 3, 2]]  # the second choice starts after the context too
    assert packed.attention()[0, 0].int().tolist() == [
        [1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 0, 0, 1]]


def test_an_empty_context_is_refused_by_pack_choices():
    with pytest.raises(ValueError, match="empty context"):
        pack_choices([()], {(): [0]}, [(("", ""), [], [1, 2])], pad_id=0)


@pytest.mark.parametrize(("projection_rows", "vocabulary_chunk"), [(1, 4096), (5, 7), (512, 50)])
def test_small_blocks_and_chunks_give_the_same_answers(models, projection_rows, vocabulary_chunk):
    """Blocks smaller than a request's continuation (its positions summed across blocks and flushes), and the
    vocabulary reduced a few columns at a time, the last chunk narrower."""
    hflm, fast = models
    fast.projection_rows, fast.vocabulary_chunk = projection_rows, vocabulary_chunk
    requests = _multiple_choice_requests()
    for (ll_ref, greedy_ref), (ll, greedy) in zip(hflm.loglikelihood(requests), fast.loglikelihood(requests),
                                                  strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref


def test_hflms_own_scoring_runs_in_batches_whose_logits_fit_the_budget(models, tiny_model, tiny_tokenizer):
    """Where FastLM's paths are not sound, HFLM's code scores everything; its logits (rows x longest row x
    vocabulary) are bounded by ``fallback_logits_gb``, long rows going in smaller batches, with HFLM's answers."""
    hflm, _ = models
    position_bytes = tiny_model.config.vocab_size * 4
    budget = 20 * position_bytes  # 20 positions: rows of 11 or more go alone, of 3 six at a time
    fast = FastLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=hflm.batch_size,
                  fallback_logits_gb=budget / 1024**3)
    fast._sound = {"packed": False, "cached": False, "generate": True}
    shapes: dict[str, list[tuple[int, int]]] = {"hflm": [], "fast": []}
    for name, lm in (("hflm", hflm), ("fast", fast)):
        lm._model_call = lambda inps, call=lm._model_call, seen=shapes[name], **kw: seen.append(inps.shape) or call(
            inps, **kw)
    _match_hflm(hflm, fast, _multiple_choice_requests())
    logits_bytes = {name: [rows * length * position_bytes for rows, length in seen] for name, seen in shapes.items()}
    assert max(logits_bytes["hflm"]) > budget  # HFLM's own batches would not fit
    assert all(size <= budget or rows == 1 for size, (rows, _) in zip(logits_bytes["fast"], shapes["fast"],
                                                                    strict=True))
    assert max(rows for rows, _ in shapes["fast"]) > 1 and fast.batch_size == hflm.batch_size  # restored after


def test_the_probe_allows_float32_rounding_relative_to_the_log_likelihood(models):
    """HFLM's float32 answers are about 1e-4 of a log-likelihood from float64's on Gemma-3's vocabulary, so the
    probe allows that much of the size; a smaller log-likelihood keeps the 1e-4 floor, a larger miss is refused."""
    _, fast = models
    cases = [(-8.5, -8.5 + 6e-4, True), (-8.5, -8.5 + 2e-3, False), (-0.5, -0.5 + 1.5e-4, False),
             (-0.5, -0.5 + 5e-5, True)]
    for reference, got, agrees in cases:
        assert fast._agrees(lambda got=got: [(got, True)], [(reference, True)]) is agrees, (reference, got)
    assert not fast._agrees(lambda: [(-8.5, False)], [(-8.5, True)])  # a greedy flag must match exactly


def test_a_fallback_budget_of_zero_is_refused(tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match="fallback_logits_gb=0"):
        FastLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, fallback_logits_gb=0)


@pytest.mark.parametrize("arg", ["projection_rows", "vocabulary_chunk"])
def test_block_sizes_below_one_are_refused(tiny_model, tiny_tokenizer, arg):
    with pytest.raises(ValueError, match=f"{arg}=0"):
        FastLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, **{arg: 0})


@pytest.mark.parametrize("width", [1, 3, 16, 40])
def test_reduce_vocabulary_gives_log_softmax_and_argmax(width):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 40, generator=generator) * 20
    logits[2, 5] = logits[2, 30] = logits[2].max() + 1  # a tie: argmax keeps the first
    targets = torch.tensor([0, 39, 5, 30, 17, int(logits[5].argmax())])
    chunks = ((start, logits[:, start : start + width]) for start in range(0, 40, width))
    logprob, greedy = reduce_vocabulary(chunks, targets)
    expected = torch.log_softmax(logits.double(), -1).gather(-1, targets[:, None])[:, 0]
    assert torch.allclose(logprob.double(), expected, atol=1e-5)
    assert greedy.tolist() == (logits.argmax(-1) == targets).tolist()
    assert greedy[2] and not greedy[3] and greedy[5]


def test_loglikelihoods_match_the_float64_model(tiny_model, tiny_tokenizer):
    """Reduced online a few columns at a time and summed in float64, they stay within float32 rounding."""
    requests = _multiple_choice_requests()
    exact = HFLM(pretrained=copy.deepcopy(tiny_model).double().eval(), tokenizer=tiny_tokenizer, batch_size=3)
    fast = FastLM(pretrained=tiny_model.eval(), tokenizer=tiny_tokenizer, batch_size=3, vocabulary_chunk=7)
    for (ll_exact, greedy_exact), (ll, greedy) in zip(exact.loglikelihood(requests), fast.loglikelihood(requests),
                                                      strict=True):
        assert ll == pytest.approx(ll_exact, abs=1e-5)
        assert greedy == greedy_exact


@pytest.mark.parametrize("projection_rows", [1, 256])
def test_a_greedy_continuation_is_flagged(models, projection_rows):
    hflm, fast = models
    fast.projection_rows = projection_rows  # 1: each position's greedy match comes from its own block
    # Build a continuation from the model's own greedy choices, so the flag must be True.
    context = "w5 w9 w17"
    ids = fast.tok_encode(context)
    for _ in range(3):
        with torch.no_grad():
            ids.append(int(fast.model(torch.tensor([ids])).logits[0, -1].argmax()))
    continuation = " " + fast.tok_decode(ids[3:])
    request = [Instance("loglikelihood", {}, (context, continuation), idx=0)]
    assert fast.loglikelihood(request)[0][1] is True
    assert fast.loglikelihood(request)[0][0] == pytest.approx(hflm.loglikelihood(request)[0][0], abs=1e-4)


def test_greedy_generation_matches_hflm(models):
    hflm, fast = models
    rng = random.Random(1)
    stops = ["w3", "w40 w41"]
    requests = [
        Instance("generate_until", {}, (_words(rng, n), {"until": stops, "max_gen_toks": 12, "do_sample": False}),
                 idx=0)
        for n in (4, 9, 2, 15, 6)
    ]
    expected = hflm.generate_until(requests)
    assert fast.generate_until(requests) == expected
    # All five rows in one batch above; with batch_size (3) the larger, two batches, each its own merged cache.
    fast.generation_batch_size = 2
    batches: list[int] = []
    generate = fast._model_generate
    fast._model_generate = lambda context, *args, **kwargs: batches.append(len(context)) or generate(
        context, *args, **kwargs)
    assert fast.generate_until(requests) == expected
    assert batches == [3, 2]
    assert fast.batch_size == 3  # the loglikelihood batch size is back after generating


def test_contexts_are_grouped_after_fitting_the_window():
    requests = [(("", ""), [1, 2, 3], [4]), (("", ""), [1, 2, 3], [5, 6]), (("", ""), [9, 2, 3], [4])]
    assert group_by_context(requests, max_length=8) == {(1, 2, 3): [0, 1], (9, 2, 3): [2]}
    # A 4-token window keeps context + continuation[:-1] within 4 tokens, dropping context from the left.
    assert fit_context([1, 2, 3, 4], 2, max_length=4) == (2, 3, 4)


def test_registered_under_its_lm_eval_name():
    assert get_model("gap-fast") is FastLM


def _dialogue_requests(rng: random.Random, lengths: list[int]) -> list[Instance]:
    return [Instance("generate_until", {}, (_words(rng, n), {"until": ["w3"], "max_gen_toks": 6, "do_sample": False}),
                     idx=0) for n in lengths]


def test_a_generated_prompt_is_not_read_again_for_its_loglikelihood(models):
    """The dialogue tasks score the gold reply on the prompt they just generated from: the kept prompt serves it."""
    hflm, fast = models
    prompts = _dialogue_requests(random.Random(2), [5, 11, 3, 8])
    assert fast.generate_until(prompts) == hflm.generate_until(prompts)
    assert len(fast.prompts) == len(prompts)
    replies = [Instance("loglikelihood", {}, (r.args[0], " w7 w8 w9"), idx=0) for r in prompts]
    reads: list[int] = []
    fast._read = lambda rows, read=fast._read: reads.append(len(rows)) or read(rows)
    got, expected = fast.loglikelihood(replies), hflm.loglikelihood(replies)
    assert reads == [] and len(fast.prompts) == 0
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, expected, strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref


def test_no_prompt_is_kept_beyond_the_memory_budget(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    fast = FastLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=3, prompt_cache_gb=0)
    fast.generate_until(_dialogue_requests(random.Random(2), [5, 11]))
    assert len(fast.prompts) == 0


def test_split_and_merge_give_back_the_rows():
    rng = torch.Generator().manual_seed(0)
    rows = [[(torch.randn(1, 2, n, 4, generator=rng), torch.randn(1, 2, n, 4, generator=rng)) for _ in range(3)]
            for n in (5, 2, 7)]
    cache, mask = merge_rows(rows, config=None)
    assert mask.sum(-1).tolist() == [5, 2, 7] and is_left_padded(mask)
    back = split_rows(cache, [5, 2, 7])
    for row, row_back in zip(rows, back, strict=True):
        for (k, v), (k_back, v_back) in zip(row, row_back, strict=True):
            assert torch.equal(k, k_back) and torch.equal(v, v_back)
    assert not is_left_padded(torch.tensor([[1, 1, 0]]))


def test_sliding_window_model_generates_as_hflm(tiny_tokenizer):
    """Gemma-3 keeps only a window of recent positions in some layers: prompts longer than it take HFLM's path."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=10, max_position_embeddings=128,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    )
    model = Gemma3ForCausalLM(config).eval()
    hflm = HFLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    fast = FastLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    short = _dialogue_requests(random.Random(3), [4, 7, 2])
    assert fast.generate_until(short) == hflm.generate_until(short)
    assert len(fast.prompts) == len(short)  # within the window: read unpadded and kept
    replies = [Instance("loglikelihood", {}, (r.args[0], " w7 w8"), idx=0) for r in short]
    for (ll, _), (ll_ref, _) in zip(fast.loglikelihood(replies), hflm.loglikelihood(replies), strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
    long = _dialogue_requests(random.Random(4), [12, 30, 5])
    assert fast.generate_until(long) == hflm.generate_until(long)
    assert len(fast.prompts) == 0  # longer than the window: read as HFLM pads them, nothing kept


def test_questions_beyond_a_sliding_window_are_read_into_a_cache(tiny_tokenizer):
    """Within the window a question is packed; beyond it the window, not our mask, decides what a token sees."""
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=40, max_position_embeddings=256,
        layer_types=["sliding_attention", "full_attention"],
    )
    model = Gemma3ForCausalLM(config).eval()
    hflm = HFLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    fast = FastLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    assert all(fast.sound_paths().values())  # measured before _score_packed is counted below
    packed: list[int] = []
    fast._score_packed = lambda contexts, *args, score=fast._score_packed: packed.append(len(contexts)) or score(
        contexts, *args)
    _match_hflm(hflm, fast, _multiple_choice_requests())
    assert 0 < sum(packed) < 7


def test_fused_cuda_masks_in_a_sliding_window_model_are_not_trusted(tiny_tokenizer, tiny_model, monkeypatch):
    """On CUDA with SDPA, a model with sliding-window layers (Gemma-3's shape) gave other answers from packed rows
    on a few questions the probe passes; eager attention and models without such layers did not. There FastLM
    runs none of its own paths, and its answers are HFLM's."""
    from gap_pipeline.scoring import fast_lm

    config = Gemma3TextConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=40, max_position_embeddings=256,
        layer_types=["sliding_attention", "full_attention"],
    )
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    for attention, device, unsound in (("sdpa", cuda, True), ("eager", cuda, False), ("sdpa", cpu, False)):
        config._attn_implementation = attention
        assert fast_lm.fused_masks_unsound(config, device) is unsound, (attention, device)
    tiny_model.config._attn_implementation = "sdpa"
    assert not fast_lm.fused_masks_unsound(tiny_model.config, cuda)  # Llama: no sliding-window layer

    monkeypatch.setattr(fast_lm, "fused_masks_unsound", lambda config, device: True)  # as on such a GPU
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).eval()
    hflm = HFLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    fast = FastLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    assert fast.sound_paths() == dict.fromkeys(("packed", "cached", "generate"), False)
    fast._score_packed = lambda *args: pytest.fail("a packed row was scored")
    _match_hflm(hflm, fast, _multiple_choice_requests())
    dialogue = _dialogue_requests(random.Random(3), [4, 7, 2])
    assert fast.generate_until(dialogue) == hflm.generate_until(dialogue)


def test_scoring_and_generating_raise_no_deprecation_warning(models):
    """FastLM calls transformers' current API: a deprecated argument breaks scoring on the release that drops it."""
    _, fast = models
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.simplefilter("error", category)
        fast.loglikelihood(_multiple_choice_requests())
        fast.generate_until(_dialogue_requests(random.Random(2), [5, 11, 3]))
