"""Every causal LM family FastLM may meet gives HFLM's answers through it, and its ascent is deterministic.

Tiny random configs (vocabulary 128, two layers, width 32, dropout off) of families with different attention
and position schemes: rotary (Llama, Qwen2/3, Phi-3, Mistral with a sliding window, GPT-NeoX, GPT-J, Gemma-2),
learned absolute positions (OPT, the paper's; GPT-2), ALiBi (Bloom, MPT; Falcon with ``alibi``). FastLM measures
which of its paths are sound on each (``FastLM.sound_paths``) and must answer as HFLM does either way.
"""

from __future__ import annotations

import copy
import random

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from transformers import AutoConfig, AutoModelForCausalLM

from gap_pipeline.gap.ascent import gradient_ascent
from gap_pipeline.scoring.fast_lm import FastLM
from tests.test_fast_lm import _multiple_choice_requests, _words

WIDTH = {"vocab_size": 128, "max_position_embeddings": 128}
ROTARY = WIDTH | {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "num_key_value_heads": 2}
FAMILIES = {
    "llama": ROTARY | {"attention_dropout": 0.0},
    "opt": WIDTH | {"hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "word_embed_proj_dim": 32, "dropout": 0.0, "attention_dropout": 0.0},
    "gpt2": {"vocab_size": 128, "n_positions": 128, "n_embd": 32, "n_layer": 2, "n_head": 4, "resid_pdrop": 0.0,
             "embd_pdrop": 0.0, "attn_pdrop": 0.0},
    "gpt_neox": WIDTH | {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                         "num_attention_heads": 4, "hidden_dropout": 0.0, "attention_dropout": 0.0},
    "gptj": {"vocab_size": 128, "n_positions": 128, "n_embd": 32, "n_layer": 2, "n_head": 4, "rotary_dim": 4,
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
    "qwen2": ROTARY,
    "qwen3": ROTARY | {"head_dim": 8},
    "phi3": ROTARY | {"pad_token_id": 0, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attention_dropout": 0.0},
    "mistral": ROTARY | {"sliding_window": 16},
    "gemma2": ROTARY | {"head_dim": 8, "sliding_window": 16, "query_pre_attn_scalar": 8},
    "falcon": WIDTH | {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "alibi": True,
                       "new_decoder_architecture": False, "multi_query": True, "hidden_dropout": 0.0,
                       "attention_dropout": 0.0},
    "bloom": {"vocab_size": 128, "hidden_size": 32, "n_layer": 2, "n_head": 4, "hidden_dropout": 0.0,
              "attention_dropout": 0.0},
    "mpt": {"vocab_size": 128, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 128,
            "attn_config": {"alibi": True}, "resid_pdrop": 0.0, "emb_pdrop": 0.0},
}


PACKED_UNSOUND = {"bloom", "falcon", "mpt"}


def _model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = AutoConfig.for_model(family, **FAMILIES[family])
    return AutoModelForCausalLM.from_config(config).eval()


def _prompts() -> list[Instance]:
    rng = random.Random(1)
    return [Instance("generate_until", {}, (_words(rng, n), {"until": ["w3"], "max_gen_toks": 8,
                                                             "do_sample": False}), idx=0) for n in (4, 9, 2, 20)]


def _picks(requests: list[Instance], answers: list[tuple[float, bool]]) -> dict[int, int]:
    """Each question's choice of highest log-likelihood, as the accuracy metric reads them."""
    best: dict[int, tuple[float, int]] = {}
    for k, (request, (ll, _)) in enumerate(zip(requests, answers, strict=True)):
        if request.idx not in best or ll > best[request.idx][0]:
            best[request.idx] = (ll, k)
    return {q: k for q, (_, k) in best.items()}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fast_lm_gives_hflms_answers_on_every_family(family, tiny_tokenizer):
    model = _model(family)
    hflm = HFLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    fast = FastLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=3)
    paths = fast.sound_paths()
    # ALiBi biases by the key's index in the row, not by the positions given: a packed row's later choices
    # would sit too far from their context (and Bloom's forward refuses a 4-D mask outright).
    assert paths == {"packed": family not in PACKED_UNSOUND, "cached": True, "generate": True}, paths
    questions = _multiple_choice_requests()
    expected, got = hflm.loglikelihood(questions), fast.loglikelihood(questions)
    for (ll_ref, greedy_ref), (ll, greedy) in zip(expected, got, strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref
    assert _picks(questions, got) == _picks(questions, expected)
    assert fast.generate_until(_prompts()) == hflm.generate_until(_prompts())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_ascent_is_deterministic_with_dropout_off(family):
    ids = torch.tensor([[5, 17, 3, 44, 9, 28, 61, 12, 7, 33]])
    runs = []
    for _ in range(2):
        model = _model(family)
        result = gradient_ascent(model, ids, steps=2, lr=1e-3, betas=(0.9, 0.98))
        runs.append((result.logs[-1].loss, copy.deepcopy(model.state_dict())))
    assert runs[0][0] == runs[1][0] and runs[0][0] > result.logs[0].loss  # the loss climbed, identically
    assert all(torch.equal(runs[0][1][name], runs[1][1][name]) for name in runs[0][1])
