"""A run's trajectory: GAP's paired gain at every step, the step each protocol keeps, and the paper's bias.

The paper kept the step that scored best on the very examples it reported, so any noise in a run lands at or
above its baseline. The disjoint protocol keeps the step that was best on a separate selection slice. With every
step scored on the reported examples (the trajectory stage), both protocols' gains are read off the same
examples, and their difference, paired example by example, measures how much of the paper protocol's gain is
the selection itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gap_pipeline.core.io import read_json, read_jsonl
from gap_pipeline.core.tasks import FAMILIES, MAIN_METRIC, TRAJECTORY_STEPS_FILE, criterion_value, family_averages
from gap_pipeline.reporting.run_summary import ModelScores, family_comparison


def step_scores(trajectory_dir: Path) -> dict[int, ModelScores] | None:
    """Each step's scores on the reported examples, per task and per example; None when the trajectory is off."""
    record = read_json(trajectory_dir / TRAJECTORY_STEPS_FILE)
    if not record["enabled"]:
        return None
    examples: dict[int, dict[str, dict[Any, float]]] = {step: {} for step in record["steps"]}
    for task in record["tasks"]:
        for row in read_jsonl(trajectory_dir / f"{task}.jsonl"):
            examples[row["step"]].setdefault(task, {})[row["doc_id"]] = float(row[MAIN_METRIC[task]])
    return {step: ModelScores({task: {"score": score, "stderr": None, "examples": len(examples[step][task])}
                               for task, score in record["scores"][str(step)].items()}, examples[step])
            for step in record["steps"]}


def paper_criterion(criterion: str, families: list[str]) -> str:
    """What the paper protocol ranks steps by: the run's own criterion; both families where it is ``last``
    (no ranking), or the one family scored where the criterion needs both."""
    if criterion in families:
        return criterion
    return "both" if set(FAMILIES) <= set(families) else families[0]


def paper_step(steps: dict[int, ModelScores], criterion: str) -> int:
    """The step with the best criterion on the reported examples themselves; on a tie the earlier step."""
    start = family_averages(steps[0].scores)
    best, best_value = 0, None
    for step in sorted(steps):
        value = criterion_value(criterion, family_averages(steps[step].scores), start)
        if best_value is None or value > best_value:
            best, best_value = step, value
    return best


def _gain(base: ModelScores, other: ModelScores, family: str) -> dict[str, Any]:
    """``other`` minus ``base`` on the family's average, with its paired bootstrap 95% interval."""
    comparison = family_comparison(base, other, family)
    return {"delta": comparison["delta"], "delta_ci95": comparison["delta_ci95"]}


def protocol_summary(steps: dict[int, ModelScores], kept: int, criterion: str) -> dict[str, Any]:
    """summary.json's ``trajectory``, ``protocols`` (``paper``, ``disjoint``) and ``selection_bias``."""
    families = [f for f in FAMILIES if f in family_averages(steps[0].scores)]
    paper = paper_step(steps, paper_criterion(criterion, families))
    return {
        "trajectory": {f: [{"step": step, **_gain(steps[0], steps[step], f)} for step in sorted(steps)]
                       for f in families},
        "protocols": {name: {"step": step, **{f: _gain(steps[0], steps[step], f) for f in families}}
                      for name, step in (("paper", paper), ("disjoint", kept))},
        # Paper minus disjoint, paired on the reported examples: the share of the paper's gain that selection made.
        "selection_bias": {f: _gain(steps[kept], steps[paper], f) for f in families},
    }
