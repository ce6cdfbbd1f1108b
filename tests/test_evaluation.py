"""Our evaluation against lm-eval's own CLI on the same model, data, split and limit."""

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import lm_eval.tasks
import pytest
import torch
import yaml

from gap_pipeline.core.params import EvalParams, load_params
from gap_pipeline.models import load_model, prepare_model
from gap_pipeline.scoring.evaluate import MODEL_CLASSES, evaluate_task, flatten_metrics, make_lm
from gap_pipeline.scoring.task_config import DIALOGUE_TASKS_DIR, STOCK_TASK_DIRS, TaskRun, task_spec
from tests.conftest import PROJECT_ROOT, SHARED

BENCHMARKS = SHARED / "benchmarks"
LIMIT, BATCH = 8, 8
STOCK_YAML = {
    "copa": "super_glue/copa/default.yaml", "arc_easy": "arc/arc_easy.yaml", "winogrande": "winogrande/default.yaml",
}
TASKS = [*STOCK_YAML, "wizard_of_wikipedia"]


def test_flatten_metrics_strips_filters_and_drops_text():
    flat = flatten_metrics({"alias": "copa", "acc,none": 0.5, "acc_stderr,none": 0.1, "f1,none": "N/A"})
    assert flat == {"acc": 0.5, "acc_stderr": 0.1}


def test_task_spec_scores_the_named_split_of_the_local_mirror():
    member = task_spec(TaskRun("arc_easy", "validation", 5, BENCHMARKS))["task"][0]
    assert member["validation_split"] == "validation" and member["test_split"] is None
    assert member["dataset_kwargs"]["data_files"]["validation"].endswith("benchmarks/arc_easy/validation.jsonl")


def test_task_spec_for_the_hub_keeps_the_stock_dataset():
    member = task_spec(TaskRun("piqa", "validation", 5, None))["task"][0]
    assert "dataset_path" not in member


def test_a_missing_split_names_the_file_and_the_fix():
    with pytest.raises(FileNotFoundError, match=r"no test split for task 'copa' at .*copa/test.jsonl"):
        task_spec(TaskRun("copa", "test", 5, BENCHMARKS))


def test_every_stock_task_dir_holds_its_config():
    root = Path(lm_eval.tasks.__file__).parent
    for task, folder in STOCK_TASK_DIRS.items():
        configs = [yaml.safe_load(p.read_text().replace("!function", "")) for p in (root / folder).glob("*.yaml")]
        assert any(isinstance(c, dict) and c.get("task") == task for c in configs), task


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smollm2") / "model"
    prepare_model("smollm2-135m", out, tmp_path_factory.mktemp("scratch"))
    return out


def _write_cli_tasks(folder: Path) -> None:
    """The same tasks for lm-eval's CLI: each includes the stock (or our) YAML and points at the mirror."""
    stock_root = Path(lm_eval.tasks.__file__).parent
    sources = {task: stock_root / path for task, path in STOCK_YAML.items()}
    sources["wizard_of_wikipedia"] = DIALOGUE_TASKS_DIR / "wizard_of_wikipedia.yaml"
    for task, source in sources.items():
        config = {
            "include": str(source), "task": f"cli_{task}", "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": {"validation": str(BENCHMARKS / task / "validation.jsonl")}},
            "validation_split": "validation", "test_split": None, "training_split": None,
        }
        (folder / f"cli_{task}.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def cli_run(smollm2_dir, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("cli")
    _write_cli_tasks(folder)
    seed = load_params(PROJECT_ROOT / "params.yaml").eval.seed
    subprocess.run(
        [sys.executable, "-m", "lm_eval", "run", "--model", "hf",
         "--model_args", f"pretrained={smollm2_dir},dtype=float32",
         "--tasks", ",".join(f"cli_{t}" for t in TASKS),
         "--include_path", str(folder), "--limit", str(LIMIT), "--batch_size", str(BATCH), "--device", "cpu",
         "--seed", str(seed), "--output_path", str(folder / "out"), "--log_samples"],
        check=True, capture_output=True, text=True,
    )
    results = json.loads(next((folder / "out").rglob("results_*.json")).read_text())
    samples = {
        task: [json.loads(line) for line in next((folder / "out").rglob(f"samples_cli_{task}_*.jsonl")).open()]
        for task in TASKS
    }
    return {"results": results["results"], "samples": samples, "seed": seed}


@pytest.fixture(scope="module", params=["fast", "hf"])
def our_run(request, smollm2_dir, cli_run) -> dict:
    """Our evaluation with each model class; both must give lm-eval's CLI scores."""
    model, tokenizer = load_model(smollm2_dir, torch.device("cpu"), torch.float32)
    lm = make_lm(request.param, model, tokenizer, BATCH)
    return {
        task: evaluate_task(lm, tokenizer, TaskRun(task, "validation", LIMIT, BENCHMARKS), cli_run["seed"])
        for task in TASKS
    }


@pytest.mark.parametrize("task", TASKS)
def test_scores_equal_lm_evals_cli(task, cli_run, our_run):
    record, predictions = our_run[task]
    cli_metrics = flatten_metrics(cli_run["results"][f"cli_{task}"])
    metric = "f1" if task == "wizard_of_wikipedia" else "acc"
    assert record["examples"] == LIMIT
    assert 0.0 <= record["metrics"][metric] <= 1.0
    assert record["metrics"][metric] == pytest.approx(cli_metrics[metric], abs=1e-9)
    cli_samples = sorted(cli_run["samples"][task], key=lambda s: s["doc_id"])
    for ours, theirs in zip(sorted(predictions, key=lambda p: p["doc_id"]), cli_samples, strict=True):
        if metric == "f1":
            assert ours["f1"] == pytest.approx(theirs["f1"])
        else:
            cli_lls = [float(ll) for ll, _ in theirs["filtered_resps"]]
            # HFLM sums float32 log-probabilities, so its rounding grows with the sum: a 30-token choice near
            # -38 differed from ours (summed in float64) by 1.8e-4 on CI. 1e-5 of the value covers that; a wrong
            # token or position moves a sum by far more.
            assert ours["loglikelihoods"] == pytest.approx(cli_lls, abs=1e-4, rel=1e-5)


def test_dialogue_records_the_gold_reply_loss(our_run):
    record, predictions = our_run["wizard_of_wikipedia"]
    assert 0 < record["metrics"]["reply_loss"] < 20
    assert all(row["reply_loss"] > 0 for row in predictions)
    assert record["run"]["versions"]["lm-eval"] and record["run"]["task_version"] is not None


def test_every_model_class_params_allow_exists():
    assert set(get_args(EvalParams.model_fields["model_class"].annotation)) == set(MODEL_CLASSES)
