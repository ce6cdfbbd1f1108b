"""Which lm-eval task config scores a task, and with what data: the stock configs with only the data source and
split changed, or our dialogue tasks; both shipped in ``lm_eval_tasks/`` for lm-eval's CLI (``gap-lm-eval``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval.tasks import TaskManager

from gap_pipeline.core.checks import read_locally
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.tasks import is_dialogue
from gap_pipeline.scoring.lm_eval_tasks.utils import load_reply_split, load_split

TASKS_DIR = Path(__file__).parent / "lm_eval_tasks"
# Where lm-eval keeps each stock config: indexing one folder takes milliseconds, all of lm-eval ~9 s.
STOCK_TASK_DIRS = {
    "piqa": "piqa", "hellaswag": "hellaswag", "arc_easy": "arc", "arc_challenge": "arc",
    "copa": "super_glue/copa", "winogrande": "winogrande", "mathqa": "mathqa", "pubmedqa": "pubmedqa",
}
REPLY_LOSS_SUFFIX = "_reply_loss"


@dataclass(frozen=True)
class TaskRun:
    """What to score: ``data_dir`` None reads the hub datasets that lm-eval's stock configs name."""

    task: str
    split: str
    limit: int | None
    data_dir: Path | None


def cli_task_name(task: str) -> str:
    """The name of our variant of ``task`` in ``lm_eval_tasks/``: stock tasks are wrapped in a ``gap_`` group."""
    return f"gap_{task}" if task in STOCK_TASK_DIRS else task


def task_manager_for(run: TaskRun, tokenizer: str | None = None) -> TaskManager:
    """lm-eval's task index for ``run``, with the data folder (and the tokenizer reply losses count with) as the
    metadata our data loaders read, as ``--metadata`` gives them on the CLI."""
    metadata = {"tokenizer": tokenizer} if tokenizer else {}
    if run.data_dir is not None:
        metadata["benchmarks"] = str(run.data_dir)
    paths = [str(TASKS_DIR)]
    if run.task in STOCK_TASK_DIRS:
        import lm_eval.tasks

        paths.insert(0, str(Path(lm_eval.tasks.__file__).parent / STOCK_TASK_DIRS[run.task]))
    elif not is_dialogue(run.task):
        return TaskManager(metadata=metadata)  # any other lm-eval task, found by name in the full index
    return TaskManager(include_path=paths, include_defaults=False, metadata=metadata)


def _member(task: str, run: TaskRun, loader: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "task": task,
        # lm-eval scores test_split when a config has one; the paper scored validation, so name the split.
        "validation_split": run.split,
        "test_split": None,
        "training_split": None,  # zero-shot: no few-shot pool needed, and the mirror ships none
        "fewshot_split": None,
    }
    if run.data_dir is not None:  # None: the hub dataset the stock config names
        overrides |= {"custom_dataset": loader, "dataset_kwargs": {"task": run.task, "split": run.split}}
    # A group entry is lm-eval's documented way to reference a registered task with overrides.
    return {"group": f"gap::{task}", "task": [overrides]}


def task_spec(run: TaskRun) -> dict[str, Any]:
    """lm-eval's registered config for ``run.task`` with only its data source and split overridden: the same
    change ``lm_eval_tasks/gap_<task>.yaml`` makes for the validation split."""
    return _member(run.task, run, load_split)


def reply_loss_spec(run: TaskRun) -> dict[str, Any]:
    """The dialogue task's companion (``<task>_reply_loss``): the loss per token on the gold replies."""
    return _member(run.task + REPLY_LOSS_SUFFIX, run, load_reply_split)


def task_run(params: TrackedParams, task: str, split: str, limit: int | None, benchmarks: Path) -> TaskRun:
    """``task``'s ``split`` as params.yaml says to read it, up to ``limit`` examples from the split's start.

    ``benchmarks`` holds the imported splits; with ``eval.source: hub`` the multiple-choice tasks read the hub.
    """
    return TaskRun(task=task, split=split, limit=limit, data_dir=benchmarks if read_locally(params, task) else None)
