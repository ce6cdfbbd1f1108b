"""The paper's twelve zero-shot tasks, by kind. A light module: params validation imports it."""

MULTIPLE_CHOICE_TASKS = (
    "piqa", "hellaswag", "arc_easy", "arc_challenge", "copa", "winogrande", "mathqa", "pubmedqa",
)
DIALOGUE_TASKS = ("wizard_of_wikipedia", "empathetic_dialogues", "blended_skill_talk", "wizard_of_internet")
ALL_TASKS = MULTIPLE_CHOICE_TASKS + DIALOGUE_TASKS
# The paper averages each family separately: the classification and the dialogue (dialog) score of a run.
FAMILIES = {"classification": MULTIPLE_CHOICE_TASKS, "dialog": DIALOGUE_TASKS}

# The metric each kind is averaged on, as the paper did: accuracy for choices, unigram F1 for replies.
MAIN_METRIC = {**dict.fromkeys(MULTIPLE_CHOICE_TASKS, "acc"), **dict.fromkeys(DIALOGUE_TASKS, "f1")}


def is_dialogue(task: str) -> bool:
    return task in DIALOGUE_TASKS
