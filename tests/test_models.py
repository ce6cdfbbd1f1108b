import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from gap_pipeline.models import (
    MODEL_INFO_FILE,
    ModelNotFoundError,
    count_parameters,
    describe_source,
    load_model,
    prepare_model,
    resolve_model_source,
)


def test_packaged_smollm2_resolves_to_its_gguf_file(tmp_path):
    source = resolve_model_source("smollm2-135m", tmp_path)
    assert source.kind == "packaged"
    assert (Path(source.location) / source.gguf_file).stat().st_size > 50_000_000


def test_packaged_gemma_is_assembled_into_scratch(tmp_path):
    source = resolve_model_source("gemma3-270m", tmp_path)
    assert Path(source.location) == tmp_path
    assert (tmp_path / source.gguf_file).stat().st_size > 200_000_000


@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_a_packaged_models_record_names_its_package_version_not_its_path(tmp_path, name):
    source = resolve_model_source(name, tmp_path)
    record = describe_source(source, None)
    assert record["package_version"] == importlib.metadata.version(source.package), record
    assert record["gguf_file"] == source.gguf_file and record["hub_id"] is None
    assert "/" not in json.dumps(record), record  # no path at all: not the package's folder, not the scratch one


def test_a_hub_models_record_keeps_its_id_and_revision(tmp_path):
    record = describe_source(resolve_model_source("facebook/opt-350m", tmp_path), "main")
    assert (record["kind"], record["hub_id"], record["revision"]) == ("hub", "facebook/opt-350m", "main")


def test_hub_ids_and_local_dirs_resolve(tmp_path, tiny_model_dir):
    assert resolve_model_source("facebook/opt-350m", tmp_path).kind == "hub"
    local = resolve_model_source(str(tiny_model_dir), tmp_path)
    assert (local.kind, local.location) == ("local", str(tiny_model_dir))


def test_an_unknown_name_lists_every_kind_tried(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"packaged model \['gemma3-270m', 'smollm2-135m'\].*local directory"):
        resolve_model_source("./no/such/model", tmp_path)


def test_prepare_model_writes_safetensors_and_info(tmp_path, tiny_model, tiny_model_dir):
    out = tmp_path / "prepared"
    info = prepare_model(str(tiny_model_dir), out, tmp_path)
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))
    assert json.loads((out / MODEL_INFO_FILE).read_text()) == info
    assert info["parameters"] == count_parameters(tiny_model) > 0
    assert info["source"]["kind"] == "local"
    again = prepare_model(str(tiny_model_dir), tmp_path / "again", tmp_path / "other-scratch")
    assert (tmp_path / "again" / MODEL_INFO_FILE).read_bytes() == (out / MODEL_INFO_FILE).read_bytes()
    # The name is what params.yaml said (here a path); the record of the source adds no path of this machine.
    assert str(tmp_path) not in json.dumps(again["source"]), again
    model, tokenizer = load_model(out, torch.device("cpu"), torch.float32)
    ids = tokenizer("w3 w4 w5", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, tiny_model.eval()(ids).logits)


def test_an_unreachable_hub_model_says_how_to_use_a_local_copy(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"could not load hub model 'no-one/no-such-model'.*local directory"):
        prepare_model("no-one/no-such-model", tmp_path / "out", tmp_path)


def test_load_model_refuses_pickle_checkpoints(tmp_path, tiny_model, tiny_tokenizer):
    # A checkpoint in the old pickle format, which can run code when unpickled.
    legacy = tmp_path / "legacy"
    tiny_model.config.save_pretrained(legacy)
    tiny_tokenizer.save_pretrained(legacy)
    torch.save(tiny_model.state_dict(), legacy / "pytorch_model.bin")
    assert (legacy / "pytorch_model.bin").exists() and not (legacy / "model.safetensors").exists()
    with pytest.raises(OSError, match="safetensors"):
        load_model(legacy, torch.device("cpu"), torch.float32)


def test_remote_code_does_not_run_unless_a_param_allows_it(tmp_path, tiny_model_dir, monkeypatch):
    # Loading remote code registers its class (here Llama itself) for auto classes, process-wide; undo that
    # after the test, or every later save_pretrained of a Llama tries to copy remote code along.
    monkeypatch.setattr(LlamaForCausalLM, "_auto_class", None)
    # A model directory whose config asks transformers to import its own Python file.
    marker = tmp_path / "code_ran"
    (tiny_model_dir / "modeling_custom.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "from transformers import LlamaForCausalLM as CustomModel\n"
    )
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (tiny_model_dir / "config.json").write_text(json.dumps(config))
    load_model(tiny_model_dir, torch.device("cpu"), torch.float32)
    assert not marker.exists()  # transformers used its own Llama class
    load_model(tiny_model_dir, torch.device("cpu"), torch.float32, trust_remote_code=True)
    assert marker.exists()
