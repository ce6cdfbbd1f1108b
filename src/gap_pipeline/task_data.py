"""The tasks' data splits: checked record by record as they enter the repository, then copied into it.

A local mirror holds one folder per task and one ``<split>.jsonl`` per split, in the field layout of the hub
dataset that lm-eval's stock config reads. A broken record would otherwise surface as a traceback deep inside
lm-eval, or worse, as a silently wrong score; here it stops the import with the file, the line and the fix.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gap_pipeline.core.errors import DataFormatError, DataNotFoundError
from gap_pipeline.core.io import atomic_path, parse_jsonl
from gap_pipeline.core.tasks import ALL_TASKS, TASK_FIELDS, TASK_LABELS, is_dialogue


def check_record(task: str, record: dict[str, Any], where: str) -> None:
    """Refuse a record missing a field the task reads, or a dialogue without a context and a reply."""
    missing = [f for f in TASK_FIELDS[task] if f not in record]
    if missing:
        raise DataFormatError(f"{where}: no field {missing[0]!r} (a {task} record needs {list(TASK_FIELDS[task])}, "
                              f"this one has {sorted(record)}); fix the record or remove it")
    if task in TASK_LABELS:
        field, allowed = TASK_LABELS[task]
        if record[field] not in allowed or isinstance(record[field], bool):
            raise DataFormatError(f"{where}: field {field!r} is {record[field]!r}; a {task} record's {field} is one "
                                  f"of {list(allowed)}; fix the record or remove it")
    if is_dialogue(task):
        turns = record["text"]
        if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) for t in turns):
            raise DataFormatError(f"{where}: field 'text' must list at least 2 turns as strings (the context, then "
                                  "the gold reply); fix the record or remove it")


def check_split(task: str, path: Path) -> int:
    """Check every record of one split file; returns its number of records."""
    records = parse_jsonl(path)
    for number, record in records:
        check_record(task, record, f"{path}:{number}")
    return len(records)


def split_files(mirror: Path) -> dict[str, list[Path]]:
    """The split files of the paper's tasks in a mirror, by task (tasks without a folder are left out)."""
    if not mirror.is_dir():
        raise DataNotFoundError(f"data.benchmarks = {str(mirror)!r}: no such folder; point it at a folder with one "
                                "sub-folder per task holding <split>.jsonl files")
    found = {task: sorted((mirror / task).glob("*.jsonl")) for task in ALL_TASKS}
    return {task: files for task, files in found.items() if files}


def import_benchmarks(mirror: Path, out: Path, render: Callable[[str, Path], int] | None = None
                      ) -> dict[str, dict[str, int]]:
    """Check every split of ``mirror`` and copy them into ``out``; returns ``{task: {split: rows}}``.

    ``render(task, path)`` then checks each split the way its task reads it (the stage passes the scoring
    layer's, which this layer cannot import). Everything is checked before anything is written, so a broken file
    leaves ``out`` as it was.
    """
    files = split_files(mirror)
    if not files:
        raise DataNotFoundError(f"data.benchmarks = {str(mirror)!r} holds none of the tasks' folders "
                                f"({', '.join(ALL_TASKS)}); point it at the benchmark mirror")
    rows = {task: {path.stem: check_split(task, path) for path in paths} for task, paths in files.items()}
    for task, paths in files.items() if render else ():
        for path in paths:
            render(task, path)
    with atomic_path(out, directory=True) as tmp:
        for task, paths in files.items():
            (tmp / task).mkdir()
            for path in paths:
                shutil.copyfile(path, tmp / task / path.name)
    return rows


def split_size(benchmarks: Path, task: str, split: str) -> int:
    """Records in an imported split (already checked on import, so counting lines is enough)."""
    path = benchmarks / task / f"{split}.jsonl"
    if not path.exists():
        raise DataNotFoundError(f"no {split} split for task {task!r} at {path}; check the split in params.yaml "
                                "against the files in data.benchmarks")
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())
