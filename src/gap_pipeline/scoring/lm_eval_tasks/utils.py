"""lm-eval hooks for the dialogue tasks; the logic lives in gap_pipeline.scoring.dialogue, unit-tested there."""

from gap_pipeline.scoring.dialogue import build_prompt, cut_reply, split_dialogue, unigram_f1


def doc_to_text(doc: dict) -> str:
    return build_prompt(split_dialogue(doc["text"])[0])


def doc_to_target(doc: dict) -> str:
    return split_dialogue(doc["text"])[1]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    return {"f1": unigram_f1(cut_reply(results[0]), doc_to_target(doc))}
