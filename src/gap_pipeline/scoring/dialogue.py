"""The paper's dialogue protocol: a transcript prompt, a greedy reply cut at the next turn, unigram F1.

Prompt: the context turns as ``User 1: ...\\nUser 2: ...`` (speakers alternate, the first is User 1), ending
with the next speaker's tag. Metric: unigram F1 between the reply and the gold last turn after SQuAD-style
normalization (the F1 ParlAI reports, which the paper used).
"""

from __future__ import annotations

import re
import string
from collections import Counter

SPEAKERS = ("User 1", "User 2")
# Generation stops at a new line or a speaker tag: the model has finished its turn.
STOP_SEQUENCES = ["\n", *(f"{s}:" for s in SPEAKERS)]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def speaker(turn_index: int) -> str:
    return SPEAKERS[turn_index % 2]


def build_prompt(context: list[str]) -> str:
    """Transcript of ``context`` ending with the tag of whoever speaks next."""
    lines = [f"{speaker(i)}: {turn.strip()}" for i, turn in enumerate(context)]
    lines.append(f"{speaker(len(context))}:")
    return "\n".join(lines)


def split_dialogue(turns: list[str]) -> tuple[list[str], str]:
    """The earlier turns are the context; the last is the gold reply."""
    if len(turns) < 2:
        raise ValueError(f"a dialogue needs a context and a reply, got {len(turns)} turn(s)")
    return turns[:-1], turns[-1].strip()


def cut_reply(generated: str) -> str:
    """The reply up to the first stop sequence, stripped."""
    for stop in STOP_SEQUENCES:
        generated = generated.split(stop, 1)[0]
    return generated.strip()


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def unigram_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)
