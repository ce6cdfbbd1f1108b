"""Zero-shot scoring of one model on one task through lm-eval's own task configs and evaluator.

The eight multiple-choice tasks are lm-eval's stock configs, changed only in where their data comes from
(the splits imported into ``data/benchmarks``, or the hub datasets the configs name) and which split is scored.
The four dialogue tasks are lm-eval tasks defined in ``lm_eval_tasks/`` (the paper's protocol). lm-eval
owns prompts, choices and metrics; this module picks the task, runs it and flattens what comes back.
"""

from __future__ import annotations

import copy
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.models.huggingface import HFLM
from transformers import PreTrainedTokenizerBase

from gap_pipeline.core.errors import DataNotFoundError
from gap_pipeline.core.io import read_json
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.runtime import configure_cpu, resolve_device, resolve_dtype, seed_everything
from gap_pipeline.core.tasks import is_dialogue
from gap_pipeline.models import MODEL_INFO_FILE, load_model
from gap_pipeline.scoring.dialogue import cut_reply
from gap_pipeline.scoring.fast_lm import FastLM
from gap_pipeline.scoring.prompt_templates import cache_prompt_templates
from gap_pipeline.scoring.task_config import (
    REPLY_LOSS_SUFFIX,
    TaskRun,
    reply_loss_spec,
    task_manager_for,
    task_run,
    task_spec,
)
from gap_pipeline.scoring.verified import VerifiedLM

# eval.model_class -> lm-eval model class (core/params.py lists the same names and `auto`; a test keeps them equal).
MODEL_CLASSES: dict[str, type[LM]] = {"fast": FastLM, "hf": HFLM}
AUTO_MODEL_CLASS = "auto"


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


def evaluate_task(
    lm: LM, tokenizer: PreTrainedTokenizerBase, run: TaskRun, seed: int
) -> tuple[dict, list[dict]]:
    """Score ``lm`` on one task with lm-eval's seeds at ``seed``; returns the record and the predictions.

    The record's ``metrics`` and ``examples`` are the results; its ``run`` says how they were obtained (data,
    versions, seconds), which changes between identical reruns and so stays out of the metrics files.
    """
    start = time.perf_counter()
    cache_prompt_templates()
    specs: list = [task_spec(run)] + ([reply_loss_spec(run)] if is_dialogue(run.task) else [])
    manager = task_manager_for(run, tokenizer.name_or_path)
    if isinstance(lm, VerifiedLM):  # it reads each question's choices and metrics from the very tasks evaluated
        lm.tasks = manager.load(specs)["tasks"]
        specs = list(lm.tasks.values())
    try:
        results = simple_evaluate(
            model=lm, tasks=specs, limit=run.limit, task_manager=manager,
            log_samples=True, bootstrap_iters=1000, random_seed=seed, numpy_random_seed=seed,
            torch_random_seed=seed, fewshot_random_seed=seed,
        )
    except ConnectionError as exc:  # what `datasets` raises for a hub dataset it can neither fetch nor find cached
        import datasets

        raise DataNotFoundError(
            f"task {run.task!r}: its hub dataset could not be read (tried the hub and the datasets cache under "
            f"{datasets.config.HF_DATASETS_CACHE}; {str(exc).splitlines()[0]}); when offline, set "
            "eval.source: local and point data.benchmarks at a folder holding <task>/<split>.jsonl"
        ) from exc
    samples = results["samples"][run.task]
    metrics = flatten_metrics(results["results"][run.task])
    predictions = [_prediction(run.task, s) for s in samples]
    if is_dialogue(run.task):
        companion = run.task + REPLY_LOSS_SUFFIX
        metrics |= flatten_metrics(results["results"][companion])
        losses = {s["doc_id"]: -s["reply_loss"][0] / s["reply_loss"][1] for s in results["samples"][companion]}
        for row in predictions:
            row["reply_loss"] = losses[row["doc_id"]]
    if isinstance(lm, VerifiedLM):
        for row in predictions:  # None: bfloat16's pick, proven to be float32's; else why float32 answered
            row["rescored"] = lm.rescored.get((run.task, row["doc_id"]))
        metrics["rescored"] = float(sum(row["rescored"] is not None for row in predictions))
    record = {
        "task": run.task,
        "metrics": metrics,
        "examples": len(samples),
        "run": {
            "split": run.split,
            "split_size": results["n-samples"][run.task]["original"],
            "limit": run.limit,
            "data": str(run.data_dir / run.task / f"{run.split}.jsonl") if run.data_dir else "hub",
            "task_version": results["versions"][run.task],
            "seed": seed,
            "seconds": time.perf_counter() - start,
            "versions": {pkg: version(pkg) for pkg in ("lm-eval", "datasets", "transformers", "torch")},
        },
    }
    if isinstance(lm, VerifiedLM) and run.task in lm.bounds:
        record["run"]["bf16_gap_error"] = {"k": lm.bounds[run.task], "safety": lm.safety}
    return record, predictions


def resolve_model_class(model_class: str, device: torch.device) -> str:
    """``auto``: ours on a CPU, where it is measured faster; lm-eval's HFLM on CUDA, until ours is measured there.

    Any other name is returned as it is, so a user who sets ``fast`` or ``hf`` gets exactly that class.
    """
    if model_class == AUTO_MODEL_CLASS:
        return "hf" if device.type == "cuda" else "fast"
    if model_class not in MODEL_CLASSES:
        raise ValueError(f"eval.model_class = {model_class!r}: allowed: {sorted(MODEL_CLASSES)} or 'auto'")
    return model_class


def make_lm(model_class: str, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, batch_size: int) -> LM:
    """The lm-eval model wrapper named by ``eval.model_class`` (``auto`` resolved on the model's device)."""
    name = resolve_model_class(model_class, next(model.parameters()).device)
    return MODEL_CLASSES[name](pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def verified_lm(exact: HFLM, calibration: int, safety: float) -> VerifiedLM:
    """``exact`` (a float32 model's lm-eval class) checking the answers of the same class on a bfloat16 copy."""
    low = type(exact)(pretrained=copy.deepcopy(exact.model).to(torch.bfloat16), tokenizer=exact.tokenizer,
                      batch_size=exact.batch_size)
    return VerifiedLM(low, exact, calibration, safety)


def score_model(
    params: TrackedParams, model_dir: Path, task: str, benchmarks: Path
) -> tuple[dict, list[dict]]:
    """The evaluate stage's work: load ``model_dir`` as params.yaml says and score it on ``task``.

    ``benchmarks`` holds the imported splits (``<task>/<split>.jsonl``).
    """
    runtime, settings = params.runtime, params.eval
    configure_cpu(runtime.threads)
    seed_everything(settings.seed)
    device = resolve_device(runtime.device)
    dtype = resolve_dtype(runtime.dtype, device)
    verified = settings.precision.mode == "bf16-verified" and not is_dialogue(task)
    dtype = torch.float32 if verified else dtype  # float32's answers, whatever runtime.dtype says
    model, tokenizer = load_model(model_dir, device, dtype, params.model.trust_remote_code)
    model.eval()
    run = task_run(params, task, settings.tasks[task].split, settings.tasks[task].limit, benchmarks)
    model_class = resolve_model_class(settings.model_class, device)  # `auto` resolved once: the class that scores
    lm = make_lm(model_class, model, tokenizer, settings.batch_size)
    if verified:
        lm = verified_lm(lm, settings.precision.calibration, settings.precision.safety)
    record, predictions = evaluate_task(lm, tokenizer, run, settings.seed)
    info = read_json(model_dir / MODEL_INFO_FILE)
    record["run"] |= {
        "model": str(model_dir), "model_name": info["name"], "model_class": model_class,
        "batch_size": settings.batch_size, "device": device.type, "dtype": str(dtype).removeprefix("torch."),
        "precision": "bf16-verified" if verified else "model",
    }
    return record, predictions
