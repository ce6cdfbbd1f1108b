"""The paper's twelve zero-shot tasks in their two families, and the metric each family is averaged on.

A light module: params validation imports it.
"""

from __future__ import annotations

import statistics

CLASSIFICATION_TASKS = (
    "piqa", "hellaswag", "arc_easy", "arc_challenge", "copa", "winogrande", "mathqa", "pubmedqa",
)
DIALOGUE_TASKS = ("wizard_of_wikipedia", "empathetic_dialogues", "blended_skill_talk", "wizard_of_internet")
ALL_TASKS = CLASSIFICATION_TASKS + DIALOGUE_TASKS
# The paper averages each family separately: a run's classification score and its dialogue score.
FAMILIES = {"classification": CLASSIFICATION_TASKS, "dialogue": DIALOGUE_TASKS}

# The trajectory stage's record of each step's scores (beside one <task>.jsonl of predictions per task).
TRAJECTORY_STEPS_FILE = "steps.json"

# Accuracy for the multiple-choice (classification) tasks, unigram F1 for the dialogue replies, as the paper.
MAIN_METRIC = {**dict.fromkeys(CLASSIFICATION_TASKS, "acc"), **dict.fromkeys(DIALOGUE_TASKS, "f1")}


# The fields each task's lm-eval config reads from a record (the hub datasets' layout); checked on import.
TASK_FIELDS = {
    "piqa": ("goal", "sol1", "sol2", "label"),
    "hellaswag": ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
    "arc_easy": ("question", "choices", "answerKey"),
    "arc_challenge": ("question", "choices", "answerKey"),
    "copa": ("premise", "choice1", "choice2", "question", "label"),
    "winogrande": ("sentence", "option1", "option2", "answer"),
    "mathqa": ("Problem", "options", "correct"),
    "pubmedqa": ("QUESTION", "CONTEXTS", "final_decision"),
    **dict.fromkeys(DIALOGUE_TASKS, ("text",)),  # the turns; the last is the gold reply
}
# Label fields whose values the hub datasets fix, where the task's lm-eval config would read any other value as
# some choice (copa's doc_to_target takes every label but 0 for choice2) instead of refusing it.
TASK_LABELS = {
    "copa": ("label", (0, 1)),
    "piqa": ("label", (0, 1)),
    "winogrande": ("answer", ("1", "2")),
    "pubmedqa": ("final_decision", ("yes", "no", "maybe")),
}


def is_dialogue(task: str) -> bool:
    return task in DIALOGUE_TASKS


def family_average(scores: dict[str, float], family: str) -> float | None:
    """The paper's average over one family's tasks that were scored; None when none was."""
    values = [scores[t] for t in FAMILIES[family] if t in scores]
    return statistics.fmean(values) if values else None


def family_averages(scores: dict[str, float]) -> dict[str, float]:
    """Both families' averages, leaving out a family none of whose tasks was scored."""
    averages = {family: family_average(scores, family) for family in FAMILIES}
    return {family: average for family, average in averages.items() if average is not None}


def criterion_value(criterion: str, averages: dict[str, float], start: dict[str, float]) -> float:
    """How good a step is; higher is better.

    ``both`` adds the two families' gains over step 0, each relative to its step-0 value: dialogue F1 (~0.1)
    and accuracy (~0.5) live on different scales, and a plain sum would let accuracy decide alone.
    """
    if criterion in FAMILIES:
        return averages[criterion]
    return sum((averages[f] - start[f]) / start[f] if start[f] else averages[f] - start[f] for f in FAMILIES)
