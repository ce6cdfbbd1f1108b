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


def load_results(metrics_dir: Path) -> dict[str, dict[str, float]]:
    """``{task: {"score", "stderr", "examples"}}`` of the main metric, from one model's ``<task>.json`` files."""
    results = {}
    for path in sorted(metrics_dir.glob("*.json")):
        record = read_json(path)
        metric = MAIN_METRIC[record["task"]]
        results[record["task"]] = {"score": record["metrics"][metric],
                                   "stderr": record["metrics"].get(f"{metric}_stderr"),
                                   "examples": record["examples"]}
    return results


def scores_of(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{task: score}`` from ``load_results``."""
    return {task: result["score"] for task, result in results.items()}


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def summarize(
    base: dict[str, dict[str, float]], gap: dict[str, dict[str, float]],
    references: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Every task's main metric for base and GAP with its stderr and example count, the deltas (GAP minus base),
    the two families' averages, and each reference model's two averages (Figure 1's line; ``references`` maps a
    name to its ``{task: score}``). Results only: an identical rerun writes the same summary."""
    tasks = {}
    for task in MAIN_METRIC:
        b, g = base.get(task), gap.get(task)
        if b is None and g is None:
            continue
        tasks[task] = {"base": b and b["score"], "gap": g and g["score"],
                       "delta": _delta(g and g["score"], b and b["score"]),
                       "base_stderr": b and b["stderr"], "gap_stderr": g and g["stderr"],
                       "examples": (b or g)["examples"]}
    base_scores, gap_scores = scores_of(base), scores_of(gap)
    averages = {}
    for family, members in FAMILIES.items():
        b, g = family_average(base_scores, family), family_average(gap_scores, family)
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
