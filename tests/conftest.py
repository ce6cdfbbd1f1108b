"""Shared fixtures: the project's own params.yaml (the one source of truth) and a tiny random model."""

from __future__ import annotations

import os
from pathlib import Path

# Tests never reach the hub: set before huggingface_hub is imported, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


def set_dotted(params: dict, dotted: str, value) -> None:
    """``set_dotted(p, "gap.steps", 2)`` sets ``p["gap"]["steps"] = 2``, as `dvc exp run -S` does."""
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node[key]
    node[last] = value


def with_shared_corpora(params: dict) -> dict:
    """Point each corpus at ../shared by absolute path, for a copy of the project that does not sit beside it."""
    for corpus in params["corpora"].values():
        corpus["source"] = str(SHARED / "corpora" / Path(corpus["source"]).name)
    return params


@pytest.fixture
def raw_params() -> dict:
    """A fresh copy of params.yaml as a dict, for tests to modify."""
    return yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_model() -> LlamaForCausalLM:
    """A randomly initialised 2-layer Llama: big enough for real gradients, small enough for milliseconds."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, attention_dropout=0.1,
    )
    return LlamaForCausalLM(config)


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over 127 made-up words plus [UNK], matching the tiny model's vocabulary."""
    vocab = {"[UNK]": 0} | {f"w{i}": i for i in range(1, 128)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token="w1")


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_model, tiny_tokenizer) -> Path:
    """The tiny model and tokenizer saved as a local model directory, as a user's own model would be."""
    out = tmp_path / "tiny"
    tiny_model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out
