"""Aggregate per-task scores into the summary, the paper's per-run CSV format, and plot tables.

Everything a user sees comes from files written here; the paper's files in ../shared/paper/ use the same
columns, so our runs and theirs line up in one DataFrame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gap_pipeline.core.io import read_json
from gap_pipeline.core.tasks import DIALOGUE_TASKS, FAMILIES, MAIN_METRIC, family_average

# Column names of the GAP authors' released per-run tables (../shared/paper/).
PAPER_COLUMNS = {
    "arc_challenge": "ai2_arc_ARC-Challenge/acc", "arc_easy": "ai2_arc_ARC-Easy/acc",
    "hellaswag": "hellaswag/acc", "mathqa": "math_qa/acc", "piqa": "piqa/acc", "pubmedqa": "pubmed_qa/acc",
    "copa": "super_glue_copa/acc", "winogrande": "winogrande_winogrande_s/acc",
    **{task: f"{task}/f1" for task in DIALOGUE_TASKS},
}
PAPER_CORPUS_LABELS = {"github": "Git.", "pile_cc": "CC", "tdec": "TDEC"}
# The released tables name the dialogue family "dialog".
PAPER_FAMILY_NAMES = {"classification": "classification", "dialogue": "dialog"}


def corpus_label(corpus: str) -> str:
    """The paper's name for one of its corpora (Git., CC, TDEC); any other corpus keeps its own name."""
    return PAPER_CORPUS_LABELS.get(corpus, corpus)


def load_scores(metrics_dir: Path) -> dict[str, float]:
    """``{task: main metric}`` from one model's ``<task>.json`` files."""
    scores = {}
    for path in sorted(metrics_dir.glob("*.json")):
        record = read_json(path)
        scores[record["task"]] = record["metrics"][MAIN_METRIC[record["task"]]]
    return scores


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def summarize(
    base: dict[str, float], gap: dict[str, float], references: dict[str, dict[str, float]] | None = None
) -> dict[str, Any]:
    """Every task's score for base and GAP, the two averages, the deltas (GAP minus base), and each reference
    model's two averages (the line GAP is measured against in Figure 1)."""
    tasks = {
        task: {"metric": MAIN_METRIC[task], "base": base.get(task), "gap": gap.get(task),
               "delta": _delta(gap.get(task), base.get(task))}
        for task in MAIN_METRIC if task in base or task in gap
    }
    averages = {}
    for family, members in FAMILIES.items():
        b, g = family_average(base, family), family_average(gap, family)
        averages[family] = {"base": b, "gap": g, "delta": _delta(g, b),
                            "tasks": sum(t in base and t in gap for t in members)}
    summary = {"averages": averages, "tasks": tasks}
    if references:
        summary["reference"] = {name: {family: family_average(scores, family) for family in FAMILIES}
                                for name, scores in references.items()}
    return summary


def paper_row(scores: dict[str, float], family: str, corpus: str, index: Any, epoch: int, model: str) -> dict:
    """One run in the paper's per-run format: corpora,index,epoch,average,model,<task columns>."""
    row = {"corpora": corpus_label(corpus), "index": index, "epoch": epoch,
           "average": family_average(scores, family), "model": model}
    # The released tables order task columns alphabetically by column name.
    return row | {PAPER_COLUMNS[t]: scores.get(t) for t in sorted(FAMILIES[family], key=PAPER_COLUMNS.__getitem__)}


def paper_file(family: str) -> str:
    """The GAP authors' per-run table of a family (../shared/paper/); ours use the same name, runs_<family>.csv."""
    return f"gap_runs_{PAPER_FAMILY_NAMES[family]}.csv"


def score_table(base: dict[str, float], gap: dict[str, float]) -> list[dict[str, Any]]:
    """Long table for `dvc plots`: one row per (task, model)."""
    return [
        {"task": task, "model": name, "metric": MAIN_METRIC[task], "score": scores[task]}
        for name, scores in (("base", base), ("gap", gap))
        for task in MAIN_METRIC if task in scores
    ]
