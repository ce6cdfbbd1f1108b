"""Every benchmark record rendered the way its task reads it, before the import stage takes it in.

A record can hold every field its task reads and still be unscorable: a copa ``label`` of 7 (two choices), an
ARC ``answerKey`` that names no choice, a prompt template that fails on a field's value. lm-eval then logs a
warning at most and scores the question against a choice that does not exist. Here each record goes through
the task's own lm-eval config (``process_docs``, then ``doc_to_text``, ``doc_to_choice``, ``doc_to_target``: the
task objects the evaluate stages build, from ``task_config``) and the import refuses it with ``file:line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gap_pipeline.core.errors import DataFormatError
from gap_pipeline.core.io import parse_jsonl
from gap_pipeline.scoring.task_config import TaskRun, task_manager_for, task_spec


def gold_index(gold: Any, choices: list[Any]) -> int | None:
    """The choice ``gold`` names, as lm-eval's multiple-choice scoring resolves it; None when it names none.

    lm-eval reads an int as an index and a string as one of the choices; a negative index would silently pick
    a choice from the end, so it names none here."""
    if isinstance(gold, bool):
        return None
    if isinstance(gold, int):
        return gold if 0 <= gold < len(choices) else None
    if isinstance(gold, str) and gold in choices:
        return choices.index(gold)
    return None


def check_rendered(task_obj: Any, doc: dict[str, Any], where: str) -> None:
    """Refuse a record whose prompt does not render, whose choices are empty or whose target is not a choice."""
    try:
        text = task_obj.doc_to_text(doc)
        target = task_obj.doc_to_target(doc)
        choices = task_obj.doc_to_choice(doc) if task_obj.OUTPUT_TYPE == "multiple_choice" else None
    except Exception as exc:  # noqa: BLE001 - any failure of the task's own template is this record's fault
        raise DataFormatError(f"{where}: the task's prompt does not render ({type(exc).__name__}: {exc}); fix "
                              "the record or remove it") from None
    if choices is None:  # a generation task: a prompt and a gold reply
        if not (isinstance(text, str) and text.strip() and isinstance(target, str) and target.strip()):
            raise DataFormatError(f"{where}: renders to an empty prompt or an empty gold reply; fix the record or "
                                  "remove it")
        return
    if not choices or not all(isinstance(c, str) and c for c in choices):
        raise DataFormatError(f"{where}: renders to no choices, or an empty one ({choices!r}); fix the record or "
                              "remove it")
    # With several contexts and one continuation (winogrande), doc_to_text gives the gold context's index.
    gold = text if task_obj.multiple_input else target
    if gold_index(gold, list(choices)) is None:
        raise DataFormatError(f"{where}: its target {gold!r} is not one of its {len(choices)} choices "
                              f"{[c[:40] for c in choices]}; fix the label or remove the record")


def render_split(task: str, path: Path) -> int:
    """Render every record of one split file through ``task``'s lm-eval config; returns the records rendered."""
    run = TaskRun(task=task, split=path.stem, limit=None, data_dir=path.parent.parent)
    task_obj = task_manager_for(run).load([task_spec(run)])["tasks"][task]
    docs = list(task_obj.eval_docs)
    lines = [number for number, _ in parse_jsonl(path)]
    if len(docs) != len(lines):
        raise DataFormatError(f"{path}: the {task} config's process_docs kept {len(docs)} of {len(lines)} "
                              "records; remove the records it cannot read")
    for doc, line in zip(docs, lines, strict=True):
        check_rendered(task_obj, doc, f"{path}:{line}")
    return len(docs)
