"""Aggregate per-task scores into the summary, the paper's per-run CSV format, and plot tables.

Everything a user sees comes from files written here; the paper's files in ../shared/paper/ use the same
columns, so our runs and theirs line up in one DataFrame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gap_pipeline.core.io import read_json, read_jsonl
from gap_pipeline.core.tasks import DIALOGUE_TASKS, FAMILIES, MAIN_METRIC, family_average
from gap_pipeline.reporting.statistics import bootstrap_ci, detectable_gain, paired_differences

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


@dataclass(frozen=True)
class ModelScores:
    """One model's scores: each task's main metric (``results``) and its value on every example (``examples``)."""

    results: dict[str, dict[str, float]]  # task -> score, stderr, examples
    examples: dict[str, dict[Any, float]] = field(default_factory=dict)  # task -> {doc_id: main metric}

    @classmethod
    def load(cls, metrics_dir: Path, predictions_dir: Path | None = None) -> ModelScores:
        """From one model's ``<task>.json`` files and, when given, its ``<task>.jsonl`` predictions."""
        results, examples = {}, {}
        for path in sorted(metrics_dir.glob("*.json")):
            record = read_json(path)
            task, metric = record["task"], MAIN_METRIC[record["task"]]
            results[task] = {"score": record["metrics"][metric], "stderr": record["metrics"].get(f"{metric}_stderr"),
                             "examples": record["examples"]}
            if predictions_dir is not None:
                rows = read_jsonl(predictions_dir / f"{task}.jsonl")
                examples[task] = {row["doc_id"]: float(row[metric]) for row in rows}
        return cls(results, examples)

    @property
    def scores(self) -> dict[str, float]:
        return {task: result["score"] for task, result in self.results.items()}


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def paired_differences_by_task(base: ModelScores, other: ModelScores, tasks: list[str]) -> dict[str, Any]:
    """Per task, ``other`` minus ``base`` on each example both scored (tasks without predictions left out)."""
    found = {t: paired_differences(base.examples[t], other.examples[t]) for t in tasks
             if t in base.examples and t in other.examples}
    return {t: d for t, d in found.items() if len(d)}


def paired_comparison(
    base: ModelScores, other: ModelScores, tasks: list[str], detectable: bool = False
) -> dict[str, Any]:
    """``other`` minus ``base`` on the same examples: the delta's bootstrap 95% interval, the examples whose score
    changed and, if asked, the smallest gain detectable at 80% power. Empty without predictions."""
    differences = paired_differences_by_task(base, other, tasks)
    if not differences:
        return {}
    changed = int(sum((d != 0).sum() for d in differences.values()))
    found = {"delta_ci95": list(bootstrap_ci(differences)), "changed": changed}
    return found | ({"mde80": detectable_gain(differences)} if detectable else {})


def summarize(base: ModelScores, gap: ModelScores, references: dict[str, ModelScores] | None = None) -> dict[str, Any]:
    """Every task's main metric for base and GAP with the paired delta, its 95% interval, the examples that changed
    and the example count; the same for the two families' averages with the smallest detectable gain (``mde80``);
    each reference model's averages and GAP's paired delta against it. Results only: a rerun writes the same."""
    tasks = {}
    for task in MAIN_METRIC:
        b, g = base.results.get(task), gap.results.get(task)
        if b is None and g is None:
            continue
        tasks[task] = {"base": b and b["score"], "gap": g and g["score"],
                       "delta": _delta(g and g["score"], b and b["score"]),
                       **paired_comparison(base, gap, [task]), "examples": (b or g)["examples"]}
    averages = {family: family_comparison(base, gap, family, detectable=True) for family in FAMILIES}
    summary = {"averages": averages, "tasks": tasks}
    if references:
        summary["reference"] = {name: {family: family_average(ref.scores, family) for family in FAMILIES}
                                for name, ref in references.items()}
        # Does GAP match the larger model? Its delta against each reference, paired on the same examples.
        summary["gap_vs_reference"] = {name: {family: _delta_only(family_comparison(ref, gap, family))
                                              for family in FAMILIES} for name, ref in references.items()}
    return summary


def _delta_only(comparison: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in comparison.items() if k in ("delta", "delta_ci95")}


def family_comparison(base: ModelScores, other: ModelScores, family: str, detectable: bool = False) -> dict[str, Any]:
    """Both models' family averages, ``other`` minus ``base`` with its paired interval, and the tasks scored."""
    b, o = family_average(base.scores, family), family_average(other.scores, family)
    scored = [t for t in FAMILIES[family] if t in base.results and t in other.results]
    return {"base": b, "gap": o, "delta": _delta(o, b), **paired_comparison(base, other, scored, detectable),
            "tasks": len(scored)}


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


def gain_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Long table for `dvc plots` (template ``gain_interval``): GAP's paired gain over base with its 95% interval,
    one row per task and one per family average, so each chart row reads "this change, and how sure"."""
    rows = []
    for family, tasks in FAMILIES.items():
        for task in [t for t in tasks if t in summary["tasks"]] + ["average"]:
            entry = summary["averages"][family] if task == "average" else summary["tasks"][task]
            if entry["delta"] is None or "delta_ci95" not in entry:  # a model unscored, or no predictions
                continue
            low, high = entry["delta_ci95"]
            rows.append({"family": family, "task": task, "metric": MAIN_METRIC[tasks[0]], "gain": entry["delta"],
                         "low": low, "high": high})
    return rows
