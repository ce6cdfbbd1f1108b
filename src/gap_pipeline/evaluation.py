"""Zero-shot scoring of one model on one task through lm-eval's own task configs and evaluator.

The eight multiple-choice tasks are lm-eval's stock configs, changed only in where their data comes from
(the local mirror in ``eval.data_dir``, or the hub datasets the configs name) and which split is scored.
The four dialogue tasks are lm-eval tasks defined in ``lm_eval_tasks/`` (the paper's protocol). lm-eval
owns prompts, choices and metrics; this module picks the task, runs it and flattens what comes back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from lm_eval import simple_evaluate
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from transformers import PreTrainedTokenizerBase

from gap_pipeline.benchmarks import is_dialogue
from gap_pipeline.dialogue import cut_reply
from gap_pipeline.errors import DataNotFoundError
from gap_pipeline.fast_lm import FastLM
from gap_pipeline.models import MODEL_INFO_FILE, load_model
from gap_pipeline.outputs import read_json
from gap_pipeline.params import Params
from gap_pipeline.runtime import configure_cpu, resolve_device, resolve_dtype, seed_everything
from gap_pipeline.selection import check_disjoint

DEFAULT_SPLIT = "validation"  # the paper's; a task outside eval.tasks (selection only) is read from it
DIALOGUE_TASKS_DIR = Path(__file__).parent / "lm_eval_tasks"
# eval.model_class -> lm-eval model class (params.py lists the same names; a test keeps them equal).
MODEL_CLASSES: dict[str, type[LM]] = {"fast": FastLM, "hf": HFLM}
# Where lm-eval keeps each stock config: indexing one folder takes milliseconds, all of lm-eval ~9 s.
STOCK_TASK_DIRS = {
    "piqa": "piqa", "hellaswag": "hellaswag", "arc_easy": "arc", "arc_challenge": "arc",
    "copa": "super_glue/copa", "winogrande": "winogrande", "mathqa": "mathqa", "pubmedqa": "pubmedqa",
}


@dataclass(frozen=True)
class TaskRun:
    """What to score: ``data_dir`` None reads the hub datasets that lm-eval's stock configs name."""

    task: str
    split: str
    limit: int | None
    data_dir: Path | None
    batch_size: int
    seed: int


def task_manager_for(task: str) -> TaskManager:
    if is_dialogue(task):
        return TaskManager(include_path=str(DIALOGUE_TASKS_DIR), include_defaults=False)
    if task in STOCK_TASK_DIRS:
        import lm_eval.tasks

        stock = Path(lm_eval.tasks.__file__).parent / STOCK_TASK_DIRS[task]
        return TaskManager(include_path=str(stock), include_defaults=False)
    return TaskManager()  # any other lm-eval task, found by name in the full index


def task_spec(run: TaskRun) -> dict[str, Any]:
    """lm-eval's registered config for ``run.task`` with only its data source and split overridden."""
    overrides: dict[str, Any] = {
        "task": run.task,
        # lm-eval scores test_split when a config has one; the paper scored validation, so name the split.
        "validation_split": run.split,
        "test_split": None,
        "training_split": None,  # zero-shot: no few-shot pool needed, and the mirror ships none
        "fewshot_split": None,
    }
    if run.data_dir is not None:
        data_file = run.data_dir / run.task / f"{run.split}.jsonl"
        if not data_file.exists():
            raise DataNotFoundError(
                f"no {run.split} split for task {run.task!r} at {data_file}; check eval.data_dir and "
                f"eval.tasks.{run.task}.split, or set eval.source: hub to read the hub"
            )
        overrides |= {
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {run.split: str(data_file.resolve())}},
        }
    # A group entry is lm-eval's documented way to reference a registered task with overrides.
    return {"group": f"gap::{run.task}", "task": [overrides]}


def flatten_metrics(task_results: dict[str, Any]) -> dict[str, float]:
    """``{"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": ...}`` -> ``{"acc": 0.5, "acc_stderr": 0.1}``."""
    flat = {}
    for key, value in task_results.items():
        name, _, _filter = key.partition(",")
        if _ and isinstance(value, (int, float)):
            flat[name] = float(value)
    return flat


def _prediction(task: str, sample: dict[str, Any]) -> dict[str, Any]:
    row = {"doc_id": sample["doc_id"], "target": sample["target"]}
    if is_dialogue(task):
        return row | {"reply": cut_reply(sample["filtered_resps"][0]), "f1": sample["f1"]}
    loglikelihoods = [float(ll) for ll, _ in sample["filtered_resps"]]
    return row | {
        "loglikelihoods": loglikelihoods,
        "predicted": max(range(len(loglikelihoods)), key=loglikelihoods.__getitem__),
        **{k: sample[k] for k in ("acc", "acc_norm") if k in sample},
    }


def reply_token_loss(
    lm: LM, tokenizer: PreTrainedTokenizerBase, samples: list[dict[str, Any]]
) -> tuple[float, list[float]]:
    """Mean per-token loss of the gold replies given their prompts (token-weighted), and each reply's own."""
    requests = [
        Instance("loglikelihood", s["doc"], (s["arguments"][0][0], " " + s["target"]), idx=0) for s in samples
    ]
    loglikelihoods = [ll for ll, _ in lm.loglikelihood(requests)]
    tokens = [len(tokenizer(" " + s["target"], add_special_tokens=False).input_ids) for s in samples]
    per_reply = [-ll / n for ll, n in zip(loglikelihoods, tokens, strict=True)]
    return -sum(loglikelihoods) / sum(tokens), per_reply


def evaluate_task(lm: LM, tokenizer: PreTrainedTokenizerBase, run: TaskRun) -> tuple[dict, list[dict]]:
    """Score ``lm`` on one task; returns the metrics record and one prediction row per example."""
    start = time.perf_counter()
    try:
        results = simple_evaluate(
            model=lm, tasks=[task_spec(run)], limit=run.limit, task_manager=task_manager_for(run.task),
            log_samples=True, bootstrap_iters=1000, random_seed=run.seed, numpy_random_seed=run.seed,
            torch_random_seed=run.seed, fewshot_random_seed=run.seed,
        )
    except ConnectionError as exc:  # what `datasets` raises for a hub dataset it can neither fetch nor find cached
        import datasets

        raise DataNotFoundError(
            f"task {run.task!r}: its hub dataset could not be read (tried the hub and the datasets cache under "
            f"{datasets.config.HF_DATASETS_CACHE}; {str(exc).splitlines()[0]}); when offline, set "
            "eval.source: local and eval.data_dir to a folder holding <task>/<split>.jsonl"
        ) from exc
    samples = results["samples"][run.task]
    metrics = flatten_metrics(results["results"][run.task])
    predictions = [_prediction(run.task, s) for s in samples]
    if is_dialogue(run.task):
        metrics["reply_loss"], per_reply = reply_token_loss(lm, tokenizer, samples)
        for row, loss in zip(predictions, per_reply, strict=True):
            row["reply_loss"] = loss
    record = {
        "task": run.task,
        "metrics": metrics,
        "examples": len(samples),
        "split_size": results["n-samples"][run.task]["original"],
        "split": run.split,
        "limit": run.limit,
        "data": str(run.data_dir / run.task / f"{run.split}.jsonl") if run.data_dir else "hub",
        "task_version": results["versions"][run.task],
        "seed": run.seed,
        "batch_size": run.batch_size,
        "seconds": time.perf_counter() - start,
        "versions": {pkg: version(pkg) for pkg in ("lm-eval", "datasets", "transformers", "torch")},
    }
    return record, predictions


def make_lm(model_class: str, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, batch_size: int) -> LM:
    """The lm-eval model wrapper named by ``eval.model_class``: ours (fast) or lm-eval's own HFLM (hf)."""
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"eval.model_class = {model_class!r}: allowed: {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[model_class](pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def task_run(params: Params, task: str, limit: int | None) -> TaskRun:
    """What params.yaml says to score of ``task``, up to ``limit`` examples from the split's start."""
    settings = params.eval
    return TaskRun(
        task=task,
        split=settings.tasks[task].split if task in settings.tasks else DEFAULT_SPLIT,
        limit=limit,
        # The dialogue sets have no hub copy (they come from the GAP authors' release): always local.
        data_dir=None if settings.source == "hub" and not is_dialogue(task) else Path(settings.data_dir),
        batch_size=settings.batch_size,
        seed=settings.seed,
    )


def score_model(params: Params, model_dir: Path, task: str) -> tuple[dict, list[dict]]:
    """The evaluate stage's work: load ``model_dir`` as params.yaml says and score it on ``task``."""
    runtime, settings = params.runtime, params.eval
    configure_cpu(runtime.threads)
    seed_everything(settings.seed)
    device = resolve_device(runtime.device)
    dtype = resolve_dtype(runtime.dtype, device)
    model, tokenizer = load_model(model_dir, device, dtype, params.model.trust_remote_code)
    model.eval()
    run = task_run(params, task, settings.tasks[task].limit)
    record, predictions = evaluate_task(make_lm(settings.model_class, model, tokenizer, run.batch_size), tokenizer, run)
    select = params.gap.select
    if select.criterion != "last" and task in select.tasks:
        check_disjoint(task, record["split_size"], select.examples, run.limit)
    info = read_json(model_dir / MODEL_INFO_FILE)
    record |= {
        "model": str(model_dir), "model_name": info["name"], "model_class": settings.model_class,
        "device": device.type, "dtype": str(dtype).removeprefix("torch."),
    }
    return record, predictions
