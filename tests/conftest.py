"""Shared fixtures: the project's own params.yaml (the one source of truth) and a tiny random model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from itertools import islice
from pathlib import Path

# Tests never reach the hub: set before huggingface_hub is imported, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Under pytest-xdist each worker, and each stage it starts, computes on one thread: two workers of torch's default
# (a thread per core) would put twice as many busy threads as cores on the machine, and OpenMP threads that
# wait for each other on a shared core spin instead of working. Read by torch when it loads, so set first.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch
import yaml
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from gap_pipeline.models import MODEL_INFO_FILE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


def set_dotted(params: dict, dotted: str, value) -> None:
    """``set_dotted(p, "gap.steps", 2)`` sets ``p["gap"]["steps"] = 2``, as `dvc exp run -S` does."""
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node[key]
    node[last] = value


def with_shared_data(params: dict) -> dict:
    """Point the corpora and benchmarks at ../shared by absolute path, for a copy of the project elsewhere."""
    for corpus in params["corpora"].values():
        corpus["source"] = str(SHARED / "corpora" / Path(corpus["source"]).name)
    params["data"]["benchmarks"] = str(SHARED / "benchmarks")
    return params


@pytest.fixture
def raw_params() -> dict:
    """A fresh copy of params.yaml as a dict, for tests to modify."""
    return yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())


def make_tiny_model(**config_overrides) -> LlamaForCausalLM:
    """A randomly initialised 2-layer Llama: big enough for real gradients, small enough for milliseconds.

    ``config_overrides`` change its ``LlamaConfig`` (a tied head, no dropout) for the tests that need it.
    """
    torch.manual_seed(0)
    config = LlamaConfig(**{
        "vocab_size": 128, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "attention_dropout": 0.1,
    } | config_overrides)
    return LlamaForCausalLM(config)


def _lookup_tokenizer(vocab: dict[str, int], splitter, eos_token: str) -> PreTrainedTokenizerFast:
    """A tokenizer that splits with ``splitter`` and looks each piece up in ``vocab`` ([UNK] if absent)."""
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token=eos_token)


def make_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over 127 made-up words plus [UNK], matching the tiny model's vocabulary."""
    vocab = {"[UNK]": 0} | {f"w{i}": i for i in range(1, 128)}
    return _lookup_tokenizer(vocab, pre_tokenizers.Whitespace(), eos_token="w1")


def save_tiny_model(out: Path) -> Path:
    """The tiny model and tokenizer saved as a local model directory, as a user's own model would be."""
    make_tiny_model().save_pretrained(out)
    make_tiny_tokenizer().save_pretrained(out)
    return out


def make_character_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (anything else is [UNK]): any two real texts differ in tokens."""
    vocab = {"[UNK]": 0, "<eos>": 1} | {chr(code): code - 30 for code in range(32, 127)}
    return _lookup_tokenizer(vocab, pre_tokenizers.Split(Regex("."), behavior="isolated"), eos_token="<eos>")


def save_wide_tiny_model(out: Path) -> Path:
    """A tiny model with a wide feed-forward layer, about 27M parameters, and one token per character.

    Its weights file (about 107 MB) takes a while to write, so a test can kill a stage while it writes, yet a step
    or a scored example costs milliseconds; its tokenizer gives each corpus text its own tokens (the word-level
    one reads every real text as [UNK]s), so a run's loss says which text it post-trained.
    """
    # A character is a token: a window of 512 holds a choice or a reply (the longest scored here: 241) with context.
    make_tiny_model(hidden_size=512, intermediate_size=8192, max_position_embeddings=512).save_pretrained(out)
    make_character_tokenizer().save_pretrained(out)
    return out


# Records per split in the small benchmark mirror: a few reported examples at each split's start and a selection
# slice at its end, as the tiny pipeline configurations ask.
SMALL_MIRROR_RECORDS = 16


def write_small_benchmarks(out: Path, records: int = SMALL_MIRROR_RECORDS) -> Path:
    """The first ``records`` of every split of the shared benchmark mirror, in the same layout.

    The real tasks, fields and texts, at the size a tiny `dvc repro` reads: import_benchmarks renders every record
    of the mirror through its task's lm-eval config, which for the whole mirror is most of a tiny run.
    """
    for split in sorted((SHARED / "benchmarks").glob("*/*.jsonl")):
        (out / split.parent.name).mkdir(parents=True, exist_ok=True)
        with split.open(encoding="utf-8") as lines:
            (out / split.parent.name / split.name).write_text("".join(islice(lines, records)))
    return out


@pytest.fixture(scope="session")
def small_benchmarks(tmp_path_factory) -> Path:
    return write_small_benchmarks(tmp_path_factory.mktemp("benchmarks"))


@pytest.fixture
def tiny_model() -> LlamaForCausalLM:
    return make_tiny_model()


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return make_tiny_tokenizer()


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    return save_tiny_model(tmp_path / "tiny")


@pytest.fixture(scope="session")
def tiny_model_factory():
    """``save_tiny_model`` for fixtures wider than one test."""
    return save_tiny_model


class StageDir:
    """A working directory holding a params.yaml, from which stage scripts run as `dvc repro` runs them."""

    def __init__(self, root: Path, raw_params: dict):
        self.root = root
        self.params = with_shared_data(raw_params)
        # Best-step selection on a real slice small enough for a tiny model: two tasks, two examples each.
        self.params["gap"]["select"] |= {"examples": 2, "tasks": ["copa", "wizard_of_wikipedia"]}
        self.params["reference"]["models"] = []

    def set(self, dotted: str, value) -> None:
        set_dotted(self.params, dotted, value)

    def run(self, stage: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        (self.root / "params.yaml").write_text(yaml.safe_dump(self.params, sort_keys=False))
        return subprocess.run([sys.executable, str(PROJECT_ROOT / "stages" / f"{stage}.py"), *args],
                              cwd=self.root, capture_output=True, text=True, env=os.environ | (env or {}))

    def write_corpus(self, docs: list[dict]) -> str:
        corpus = self.root.parent / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
        return str(corpus)

    def gap(self, base: Path, corpus: str, out: str = "models/gap", metrics: str = "metrics/gap"):
        return self.run("gap", "--model", str(base), "--corpus", corpus, "--benchmarks", str(SHARED / "benchmarks"),
                        "--out", out, "--metrics", metrics, "--timing", f"{metrics}-timing.json",
                        "--run-info", f"{out}_run.json")

    def evaluate(self, model: Path | str, task: str, name: str, **kwargs) -> subprocess.CompletedProcess:
        """Score ``model`` on ``task`` into metrics/<name>.json, data/<name>.jsonl and data/<name>.run.json."""
        return self.run("evaluate", "--model", str(model), "--task", task, "--benchmarks", str(SHARED / "benchmarks"),
                        "--scores", f"metrics/{name}.json", "--predictions", f"data/{name}.jsonl",
                        "--run-info", f"data/{name}.run.json", **kwargs)

    def leftovers(self) -> list[str]:
        """Every file a stage wrote (temporary ones included), except the params it was given."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and p.name != "params.yaml")


@pytest.fixture
def stage_dir(tmp_path, raw_params) -> StageDir:
    work = tmp_path / "work"
    work.mkdir()
    return StageDir(work, raw_params)


@pytest.fixture
def tiny_base(tiny_model_dir) -> Path:
    """The tiny model as prepare_model leaves it: with the model_info.json that later stages read."""
    (tiny_model_dir / MODEL_INFO_FILE).write_text(json.dumps({"name": "tiny", "parameters": 1}))
    return tiny_model_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with the most end-to-end tests (marked slow or ray: dvc repro, lm-eval agreement, Ray) first.

    pytest-xdist hands out one file at a time in this order (`--no-loadscope-reorder` in pyproject.toml; by
    default it would order files by their number of tests): the longest files start at once and the short ones
    fill in around them, instead of one long file starting last and running alone at the end."""
    end_to_end = Counter(item.path for item in items
                         if item.get_closest_marker("ray") or item.get_closest_marker("slow"))
    items.sort(key=lambda item: -end_to_end[item.path])
