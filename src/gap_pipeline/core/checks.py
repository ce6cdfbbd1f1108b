"""Checks across stages, made by the first stage before any other runs (and so before DVC removes an output).

One stage's params cannot be checked against another's inside either stage without each reading the other's
keys, which would make DVC rerun both whenever either changes. Here, the selection slice (the last
``gap.select.examples`` rows of ``gap.select.split``) must not reach into the reported examples (the first
``eval.tasks.<task>.limit`` rows of ``eval.tasks.<task>.split``) when the two splits are the same.
"""

from __future__ import annotations

from pathlib import Path

from gap_pipeline.core.errors import DataNotFoundError, ParamsError
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.tasks import is_dialogue


def check_disjoint(task: str, split_size: int, examples: int, limit: int | None) -> None:
    """Refuse a reporting slice (the first ``limit`` rows) that reaches into the selection slice (the last rows)."""
    reported = split_size if limit is None else min(limit, split_size)
    if examples and reported > split_size - examples:
        raise ParamsError(
            f"eval.tasks.{task}.limit = {limit} and gap.select.examples = {examples} overlap: the {task} split "
            f"has {split_size} examples, the reporting stages score the first {reported} and step selection "
            f"the last {examples}; lower one of them so that limit + examples <= {split_size}, or select on "
            "another split (gap.select.split)"
        )


def local_split_size(data_dir: Path, task: str, split: str) -> int:
    """Rows of a task's split in the local mirror (one JSON object per line)."""
    path = data_dir / task / f"{split}.jsonl"
    if not path.exists():
        raise DataNotFoundError(f"no {split} split for task {task!r} at {path}; check eval.data_dir and the split")
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def check_selection_disjoint(params: TrackedParams) -> list[str]:
    """Check every selection task whose reporting split is the selection split; returns the tasks checked.

    A task read from the hub (``eval.source: hub``) is not checked here: its size is known only after a download.
    """
    select, settings = params.gap.select, params.eval
    if select.criterion == "last":
        return []
    checked = []
    for task in select.tasks:
        reporting = settings.tasks.get(task)
        if reporting is None or reporting.split != select.split:
            continue
        # The dialogue sets have no hub copy (the GAP authors' release): they are always read locally.
        if settings.source == "hub" and not is_dialogue(task):
            continue
        size = local_split_size(Path(settings.data_dir), task, select.split)
        check_disjoint(task, size, select.examples, reporting.limit)
        checked.append(task)
    return checked
