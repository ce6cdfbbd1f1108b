"""Checks across stages, made by check_params before the stages that read the params run.

One stage's params cannot be checked against another's inside either stage without each reading the other's
keys, which would make DVC rerun both whenever either changes. Here: every split a stage will read locally
exists, and the selection slice (the last ``gap.select.examples`` rows of ``gap.select.split``) does not reach
into the reported examples (the first ``eval.tasks.<task>.limit`` rows) when the two splits are the same.
"""

from __future__ import annotations

from collections.abc import Callable

from gap_pipeline.core.errors import ParamsError
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.tasks import is_dialogue

SplitSize = Callable[[str, str], int]  # (task, split) -> rows; raises DataNotFoundError for a missing split


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


def read_locally(params: TrackedParams, task: str) -> bool:
    """Whether ``task`` is scored from the imported mirror: the dialogue sets have no hub copy, so always."""
    return params.eval.source == "local" or is_dialogue(task)


def check_splits(params: TrackedParams, split_size: SplitSize) -> list[str]:
    """Check that each local split exists and the selection slice stays clear of the reported examples.

    Returns the tasks whose slice was checked against their reported examples. A task read from the hub
    (``eval.source: hub``) is not checked: its size is known only after a download.
    """
    settings, select = params.eval, params.gap.select
    for task, run in settings.tasks.items():
        if read_locally(params, task):
            split_size(task, run.split)
    if select.criterion == "last" or select.protocol == "paper":  # the paper's protocol overlaps on purpose
        return []
    checked = []
    for task in select.tasks:
        if not read_locally(params, task):
            continue
        size = split_size(task, select.split)
        reporting = settings.tasks.get(task)
        if reporting is not None and reporting.split == select.split:
            check_disjoint(task, size, select.examples, reporting.limit)
            checked.append(task)
    return checked
