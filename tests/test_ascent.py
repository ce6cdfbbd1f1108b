import copy
import math

import pytest
import torch
from transformers import LlamaForCausalLM

from gap_pipeline.core.params import parse_params
from gap_pipeline.gap.ascent import (
    DegenerateTextError,
    DivergenceError,
    disable_dropout,
    embedding_rows_gradient,
    encode_text,
    gradient_ascent,
    make_optimizer,
    text_loss,
)
from tests.conftest import make_tiny_model


@pytest.fixture
def gap_params(raw_params):
    return parse_params(raw_params).gap


@pytest.fixture
def input_ids():
    return torch.randint(0, 128, (1, 24), generator=torch.Generator().manual_seed(1))


def test_one_ascent_step_raises_the_text_loss(tiny_model, input_ids, gap_params):
    disable_dropout(tiny_model)
    before = text_loss(tiny_model, input_ids)
    # A larger lr than the paper's so one step moves a random model clearly.
    gradient_ascent(tiny_model, input_ids, 1, gap_params.lr * 100, gap_params.betas)
    assert text_loss(tiny_model, input_ids) > before


def test_optimizer_uses_the_configured_lr_and_betas(tiny_model, gap_params):
    optimizer = make_optimizer(tiny_model, gap_params.lr, gap_params.betas)
    assert isinstance(optimizer, torch.optim.Adam)
    group = optimizer.param_groups[0]
    assert group["lr"] == gap_params.lr == 5.0e-5
    assert tuple(group["betas"]) == tuple(gap_params.betas) == (0.9, 0.98)


def test_dropout_is_off_during_ascent(tiny_model, input_ids, gap_params):
    tiny_model.model.layers[0].mlp.add_module("drop", torch.nn.Dropout(0.5))
    assert tiny_model.config.attention_dropout > 0
    gradient_ascent(tiny_model, input_ids, 1, gap_params.lr, gap_params.betas)
    assert tiny_model.config.attention_dropout == 0.0
    assert all(m.p == 0.0 for m in tiny_model.modules() if isinstance(m, torch.nn.Dropout))
    # With dropout off, two forward passes in train mode agree exactly.
    tiny_model.train()
    with torch.no_grad():
        assert torch.equal(tiny_model(input_ids).logits, tiny_model(input_ids).logits)


def test_gradient_ascent_logs_every_step_and_changes_weights(tiny_model, input_ids, gap_params):
    before = [p.detach().clone() for p in tiny_model.parameters()]
    seen = []
    result = gradient_ascent(tiny_model, input_ids, 3, gap_params.lr, gap_params.betas,
                             on_step=lambda log, model: seen.append(log.step))
    assert [log.step for log in result.logs] == seen == [0, 1, 2, 3]
    assert result.logs[0].seconds is None and not result.diverged and result.kept_step == 3
    assert all(log.seconds > 0 and log.tokens_per_second > 0 for log in result.logs[1:])
    assert result.logs[-1].loss > result.logs[0].loss
    assert result.logs[-1].loss == pytest.approx(text_loss(tiny_model, input_ids), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, tiny_model.parameters(), strict=True))


def test_zero_steps_leave_the_model_untouched(tiny_model, input_ids, gap_params):
    before = [p.detach().clone() for p in tiny_model.parameters()]
    result = gradient_ascent(tiny_model, input_ids, 0, gap_params.lr, gap_params.betas)
    assert [log.step for log in result.logs] == [0] and result.kept_step == 0
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_model.parameters(), strict=True))


def _poison_after(poisoned_step: int):
    """An on_step hook that writes NaN into one weight, as a numerical blow-up in the update would."""
    def hook(log, model):
        if log.step == poisoned_step:
            with torch.no_grad():
                # One NaN logit makes every position's log-softmax NaN.
                model.get_output_embeddings().weight[0, 0] = float("nan")
    return hook


def test_a_nan_loss_stops_the_ascent_and_restores_the_last_finite_step(tiny_model, input_ids, gap_params):
    kept = {}
    def hook(log, model):
        if log.step == 1:
            kept.update({n: p.detach().clone() for n, p in model.named_parameters()})
        _poison_after(1)(log, model)
    result = gradient_ascent(tiny_model, input_ids, 5, gap_params.lr, gap_params.betas, on_step=hook)
    assert result.diverged and result.diverged_step == 2 and math.isnan(result.diverged_loss)
    assert result.kept_step == 1 and [log.step for log in result.logs] == [0, 1]
    assert all(torch.isfinite(p).all() for p in tiny_model.parameters())
    assert all(torch.equal(kept[n], p) for n, p in tiny_model.named_parameters())


def test_a_loss_above_the_ceiling_stops_the_ascent(tiny_model, input_ids, gap_params):
    disable_dropout(tiny_model)
    before = [p.detach().clone() for p in tiny_model.parameters()]
    start = text_loss(tiny_model, input_ids)
    # A huge lr makes the loss leap past a ceiling just above where it started.
    result = gradient_ascent(tiny_model, input_ids, 5, 1.0, gap_params.betas, loss_ceiling=start + 1e-3)
    assert result.diverged_step == 1 and result.diverged_loss > start + 1e-3
    assert result.kept_step == 0 and result.logs[0].loss == pytest.approx(start)
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_model.parameters(), strict=True))


def test_a_base_model_already_past_the_ceiling_is_an_error(tiny_model, input_ids, gap_params):
    with pytest.raises(DivergenceError, match="gap.loss_ceiling"):
        gradient_ascent(tiny_model, input_ids, 2, gap_params.lr, gap_params.betas, loss_ceiling=1e-6)


class _CharTokenizer:
    """Stands in for a tokenizer: one token per character, truncated like transformers does."""

    def __call__(self, text, truncation, max_length, return_tensors):
        ids = [ord(c) % 128 for c in text][:max_length]
        return type("Enc", (), {"input_ids": torch.tensor([ids], dtype=torch.long)})


def test_encode_text_truncates_to_max_length():
    assert encode_text(_CharTokenizer(), "x" * 100, max_length=16).shape == (1, 16)


def test_encode_text_names_a_degenerate_text():
    with pytest.raises(DegenerateTextError, match="doc_id=42"):
        encode_text(_CharTokenizer(), "a", max_length=16, doc_id=42)


def _tied_model() -> LlamaForCausalLM:
    """The tiny Llama with its head sharing the input embedding's weight, as SmolLM2's and Gemma-3's do.

    No dropout: the tests compare two forward passes of it in train mode.
    """
    return make_tiny_model(tie_word_embeddings=True, pad_token_id=0, attention_dropout=0.0)


def test_a_tied_embedding_adds_its_rows_into_the_heads_gradient(input_ids):
    model = _tied_model()
    ids = input_ids.clone()
    ids[0, :3] = 0  # the padding row: the embedding's backward leaves it out either way
    embedding = model.get_input_embeddings()
    shared = embedding.weight
    model(input_ids=ids, labels=ids).loss.backward()
    dense = shared.grad.clone()
    model.zero_grad(set_to_none=True)
    with embedding_rows_gradient(model) as switched:
        assert switched and embedding.weight is not shared and embedding.weight.data_ptr() == shared.data_ptr()
        model(input_ids=ids, labels=ids).loss.backward()
    assert embedding.weight is shared is model.get_output_embeddings().weight and not embedding.sparse
    assert not shared.grad.is_sparse and [p for p in model.parameters() if p is shared] == [shared]
    torch.testing.assert_close(shared.grad, dense, atol=1e-7, rtol=1e-6)
    # The rows matter: the head's gradient alone (embeddings fed in, cut from the weight) is clearly another.
    model.zero_grad(set_to_none=True)
    model(inputs_embeds=embedding(ids).detach(), labels=ids).loss.backward()
    assert not torch.allclose(shared.grad, dense, atol=1e-4, rtol=1e-3)


def test_an_untied_embedding_keeps_its_own_gradient(tiny_model):
    embedding = tiny_model.get_input_embeddings()
    assert tiny_model.get_output_embeddings().weight is not embedding.weight
    weight = embedding.weight
    with embedding_rows_gradient(tiny_model) as switched:
        assert not switched and embedding.weight is weight and not embedding.sparse


def test_an_ascent_with_embedding_rows_ends_at_autograds_weights(input_ids, gap_params):
    model = _tied_model()
    reference = copy.deepcopy(model)
    gradient_ascent(model, input_ids, 3, gap_params.lr * 100, gap_params.betas)
    gradient_ascent(reference, input_ids, 3, gap_params.lr * 100, gap_params.betas, embedding_rows=False)
    for (name, a), (_, b) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
