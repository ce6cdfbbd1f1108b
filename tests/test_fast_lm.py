"""FastLM must give HFLM's answers: same log-likelihoods (to 1e-4), same greedy flags, same generated text."""

import random

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_model
from lm_eval.models.huggingface import HFLM

from gap_pipeline.fast_lm import FastLM, fit_context, group_by_context


def _words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randint(1, 127)}" for _ in range(n))


@pytest.fixture
def models(tiny_model, tiny_tokenizer):
    tiny_model.eval()
    return (HFLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=3),
            FastLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=3))


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


def test_a_greedy_continuation_is_flagged(models):
    hflm, fast = models
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
    assert fast.generate_until(requests) == hflm.generate_until(requests)


def test_contexts_are_grouped_after_fitting_the_window():
    requests = [(("", ""), [1, 2, 3], [4]), (("", ""), [1, 2, 3], [5, 6]), (("", ""), [9, 2, 3], [4])]
    assert group_by_context(requests, max_length=8) == {(1, 2, 3): [0, 1], (9, 2, 3): [2]}
    # A 4-token window keeps context + continuation[:-1] within 4 tokens, dropping context from the left.
    assert fit_context([1, 2, 3, 4], 2, max_length=4) == (2, 3, 4)


def test_registered_under_its_lm_eval_name():
    assert get_model("gap-fast") is FastLM
