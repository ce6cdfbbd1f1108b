"""Our evaluation against lm-eval's own CLI on the same model, data, split and limit."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import lm_eval.tasks
import pytest
import torch
import yaml

from gap_pipeline.core.errors import DataNotFoundError
from gap_pipeline.core.params import EvalParams, load_params
from gap_pipeline.models import load_model, prepare_model
from gap_pipeline.scoring.evaluate import (
    AUTO_MODEL_CLASS,
    MODEL_CLASSES,
    evaluate_task,
    flatten_metrics,
    make_lm,
    resolve_model_class,
    verified_lm,
)
from gap_pipeline.scoring.lm_eval_cli import lm_eval_arguments
from gap_pipeline.scoring.lm_eval_tasks import utils as lm_eval_task_utils
from gap_pipeline.scoring.lm_eval_tasks.utils import (
    BENCHMARKS_ENV,
    benchmarks_folder,
    load_split,
    reply_loss_results,
    token_mean_loss,
)
from gap_pipeline.scoring.task_config import STOCK_TASK_DIRS, TASKS_DIR, TaskRun, cli_task_name, task_spec
from tests.conftest import PROJECT_ROOT, SHARED, StageDir, with_shared_data

BENCHMARKS = SHARED / "benchmarks"
LIMIT, BATCH = 8, 8
STOCK_YAML = {
    "copa": "super_glue/copa/default.yaml", "arc_easy": "arc/arc_easy.yaml", "winogrande": "winogrande/default.yaml",
}
TASKS = [*STOCK_YAML, "wizard_of_wikipedia"]


def test_flatten_metrics_strips_filters_and_drops_text():
    flat = flatten_metrics({"alias": "copa", "acc,none": 0.5, "acc_stderr,none": 0.1, "f1,none": "N/A"})
    assert flat == {"acc": 0.5, "acc_stderr": 0.1}


def test_task_spec_scores_the_named_split_of_the_benchmark_folder():
    member = task_spec(TaskRun("arc_easy", "validation", 5, BENCHMARKS))["task"][0]
    assert member["validation_split"] == "validation" and member["test_split"] is None
    assert member["custom_dataset"] is load_split
    assert member["dataset_kwargs"] == {"task": "arc_easy", "split": "validation"}


def test_task_spec_for_the_hub_keeps_the_stock_dataset():
    member = task_spec(TaskRun("piqa", "validation", 5, None))["task"][0]
    assert "custom_dataset" not in member and "dataset_kwargs" not in member


def test_a_missing_split_names_the_file_and_the_fix():
    with pytest.raises(DataNotFoundError, match=r"no test split for task 'copa' at .*copa/test.jsonl"):
        load_split("copa", "test", str(BENCHMARKS))


def test_the_benchmark_folder_comes_from_metadata_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(BENCHMARKS_ENV, str(tmp_path / "from_env"))
    assert benchmarks_folder(str(tmp_path / "given")) == tmp_path / "given"
    assert benchmarks_folder() == tmp_path / "from_env"
    monkeypatch.delenv(BENCHMARKS_ENV)
    monkeypatch.setattr(lm_eval_task_utils, "PROJECT_BENCHMARKS", tmp_path / "absent")
    with pytest.raises(DataNotFoundError, match="pass --metadata benchmarks=DIR"):
        benchmarks_folder()


def test_reply_loss_weighs_replies_by_their_tokens():
    # Replies of 2 and 6 tokens with summed log-likelihoods -4 and -6: (4 + 6) / (2 + 6) = 1.25 nats per token,
    # not the mean of per-reply losses (2 + 1) / 2 = 1.5.
    assert token_mean_loss([(-4.0, 2), (-6.0, 6)]) == pytest.approx(1.25)
    assert reply_loss_results({"reply_tokens": 3}, [(-1.5, False)]) == {"reply_loss": (-1.5, 3)}


def test_gap_lm_eval_maps_our_names_and_leaves_the_rest():
    args = lm_eval_arguments(["--model", "gap-fast", "--tasks", "copa,wizard_of_wikipedia_reply_loss,lambada",
                              "--limit", "3"])
    tasks = args[args.index("--tasks") + 1].split(",")
    assert tasks == [str(TASKS_DIR / "gap_copa.yaml"), str(TASKS_DIR / "wizard_of_wikipedia_reply_loss.yaml"),
                     "lambada"]
    assert args[:2] == ["--model", "gap-fast"] and args[4:] == ["--limit", "3", "--include_path", str(TASKS_DIR)]
    assert lm_eval_arguments(["--tasks=piqa", "--include_path", "mine"]) == [
        f"--tasks={TASKS_DIR / 'gap_piqa.yaml'}", "--include_path", "mine"]
    assert lm_eval_arguments(["--help"]) == ["--help"]


def test_every_shipped_variant_wraps_its_stock_task():
    for task in STOCK_TASK_DIRS:
        config = yaml.safe_load((TASKS_DIR / f"gap_{task}.yaml").read_text().replace("!function", ""))
        (member,) = config["task"]
        assert config["group"] == cli_task_name(task) and member["task"] == task
        assert member["custom_dataset"] == "utils.load_split"
        assert member["dataset_kwargs"] == {"task": task, "split": "validation"}


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
    for task, source in sources.items():
        config = {
            "include": str(source), "task": f"cli_{task}", "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": {"validation": str(BENCHMARKS / task / "validation.jsonl")}},
            "validation_split": "validation", "test_split": None, "training_split": None,
        }
        (folder / f"cli_{task}.yaml").write_text(yaml.safe_dump(config))
    # Ours reads the benchmark folder from --metadata (utils.load_split).
    config = {"include": str(TASKS_DIR / "wizard_of_wikipedia.yaml"), "task": "cli_wizard_of_wikipedia"}
    (folder / "cli_wizard_of_wikipedia.yaml").write_text(yaml.safe_dump(config))


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
         "--seed", str(seed), "--output_path", str(folder / "out"), "--log_samples",
         "--metadata", json.dumps({"benchmarks": str(BENCHMARKS)})],
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


@pytest.mark.slow  # SmolLM2 prepared, lm-eval's CLI run on it
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


@pytest.mark.slow  # SmolLM2 prepared, lm-eval's CLI run on it
def test_dialogue_records_the_gold_reply_loss(our_run):
    record, predictions = our_run["wizard_of_wikipedia"]
    assert 0 < record["metrics"]["reply_loss"] < 20
    assert all(row["reply_loss"] > 0 for row in predictions)
    assert record["run"]["versions"]["lm-eval"] and record["run"]["task_version"] is not None


def test_every_model_class_params_allow_exists():
    assert set(get_args(EvalParams.model_fields["model_class"].annotation)) == set(MODEL_CLASSES) | {AUTO_MODEL_CLASS}


def test_auto_is_ours_on_a_cpu_and_hflm_on_cuda(tiny_model, tiny_tokenizer):
    assert resolve_model_class(AUTO_MODEL_CLASS, torch.device("cpu")) == "fast"
    assert resolve_model_class(AUTO_MODEL_CLASS, torch.device("cuda", 0)) == "hf"
    assert resolve_model_class("hf", torch.device("cpu")) == "hf"  # a class named outright is kept
    assert type(make_lm(AUTO_MODEL_CLASS, tiny_model, tiny_tokenizer, batch_size=2)) is MODEL_CLASSES["fast"]
    with pytest.raises(ValueError, match="eval.model_class = 'tpu'"):
        resolve_model_class("tpu", torch.device("cpu"))


GAP_CLI_TASKS = ["wizard_of_wikipedia", "copa"]


@pytest.fixture(scope="module")
def gap_cli_vs_stage(smollm2_dir, tmp_path_factory) -> dict:
    """`gap-lm-eval` run from an unrelated folder, and the evaluate stage, on the same model and limits."""
    params = with_shared_data(yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text()))
    settings = params["eval"]
    for task in GAP_CLI_TASKS:
        settings["tasks"][task]["limit"] = LIMIT
    stage = StageDir(tmp_path_factory.mktemp("stage"), params)
    stage.params["eval"] = settings
    records = {}
    for task in GAP_CLI_TASKS:
        stage.evaluate(smollm2_dir, task, f"eval/{task}").check_returncode()
        records[task] = json.loads((stage.root / f"metrics/eval/{task}.json").read_text())
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    command = [str(Path(sys.executable).parent / "gap-lm-eval"), "--model", "gap-fast",
               "--model_args", f"pretrained={smollm2_dir},dtype=float32",
               "--tasks", "wizard_of_wikipedia,wizard_of_wikipedia_reply_loss,copa", "--limit", str(LIMIT),
               "--batch_size", str(settings["batch_size"]), "--device", "cpu", "--seed", str(settings["seed"]),
               "--output_path", "out"]
    subprocess.run(command, cwd=elsewhere, env=os.environ | {"GAP_BENCHMARKS": str(BENCHMARKS)},
                   check=True, capture_output=True, text=True)
    cli = json.loads(next((elsewhere / "out").rglob("results_*.json")).read_text())["results"]
    return {"cli": {name: flatten_metrics(values) for name, values in cli.items()}, "stage": records}


@pytest.mark.slow  # SmolLM2 prepared, lm-eval's CLI run on it
def test_gap_lm_eval_gives_the_evaluate_stages_scores(gap_cli_vs_stage):
    cli, stage = gap_cli_vs_stage["cli"], gap_cli_vs_stage["stage"]
    assert stage["copa"]["examples"] == stage["wizard_of_wikipedia"]["examples"] == LIMIT
    assert cli["copa"]["acc"] == stage["copa"]["metrics"]["acc"]
    assert cli["wizard_of_wikipedia"]["f1"] == stage["wizard_of_wikipedia"]["metrics"]["f1"]
    # The CLI scores copa's choices and the gold replies in one loglikelihood batch, the stage the replies alone:
    # the same sums in another order, so float32 rounding may differ in the last digits, never more.
    assert cli["wizard_of_wikipedia_reply_loss"]["reply_loss"] == pytest.approx(
        stage["wizard_of_wikipedia"]["metrics"]["reply_loss"], rel=1e-6)
    assert 0 < stage["wizard_of_wikipedia"]["metrics"]["reply_loss"] < 20


@pytest.mark.slow  # SmolLM2 prepared, lm-eval's CLI run on it
def test_bf16_verified_gives_float32s_picks_and_metrics(smollm2_dir):
    """A bfloat16 copy scores, float32 re-scores what it could have changed: float32's answers, re-scores marked."""
    model, tokenizer = load_model(smollm2_dir, torch.device("cpu"), torch.float32)
    exact = make_lm("fast", model, tokenizer, BATCH)
    lm = verified_lm(exact, calibration=2, safety=4.0)
    for task in ("arc_easy", "winogrande"):  # acc and acc_norm from one context; one continuation, two contexts
        run = TaskRun(task, "validation", LIMIT, BENCHMARKS)
        record, predictions = evaluate_task(lm, tokenizer, run, 1234)
        exact_record, exact_predictions = evaluate_task(exact, tokenizer, run, 1234)
        assert {k: v for k, v in record["metrics"].items() if k != "rescored"} == exact_record["metrics"]
        ours, theirs = (sorted(p, key=lambda row: row["doc_id"]) for p in (predictions, exact_predictions))
        assert [p["predicted"] for p in ours] == [p["predicted"] for p in theirs]
        assert [p["rescored"] for p in ours[:2]] == ["calibration"] * 2
        assert {p["rescored"] for p in ours[2:]} <= {None, "margin"}
        assert record["metrics"]["rescored"] == sum(p["rescored"] is not None for p in ours) >= 2
        assert set(record["run"]["bf16_gap_error"]["k"]) == ({"acc", "acc_norm"} if task == "arc_easy" else {"acc"})
