"""Which lm-eval task config scores a task, and with what data: the stock configs with only the data source and
split changed, or our dialogue tasks in ``lm_eval_tasks/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval.tasks import TaskManager

from gap_pipeline.core.errors import DataNotFoundError
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.tasks import is_dialogue

DIALOGUE_TASKS_DIR = Path(__file__).parent / "lm_eval_tasks"
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
                f"no {run.split} split for task {run.task!r} at {data_file}; check data.benchmarks and "
                f"eval.tasks.{run.task}.split, or set eval.source: hub to read the hub"
            )
        overrides |= {
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {run.split: str(data_file.resolve())}},
        }
    # A group entry is lm-eval's documented way to reference a registered task with overrides.
    return {"group": f"gap::{run.task}", "task": [overrides]}


def task_run(params: TrackedParams, task: str, split: str, limit: int | None, benchmarks: Path) -> TaskRun:
    """``task``'s ``split`` as params.yaml says to read it, up to ``limit`` examples from the split's start.

    ``benchmarks`` holds the imported splits; with ``eval.source: hub`` the multiple-choice tasks read the hub.
    """
    settings = params.eval
    return TaskRun(
        task=task,
        split=split,
        limit=limit,
        # The dialogue sets have no hub copy (they come from the GAP authors' release): always local.
        data_dir=None if settings.source == "hub" and not is_dialogue(task) else benchmarks,
    )
