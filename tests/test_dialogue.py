from pathlib import Path

import pytest
import yaml

import gap_pipeline.scoring.dialogue
from gap_pipeline.scoring.dialogue import (
    STOP_SEQUENCES,
    build_prompt,
    cut_reply,
    normalize_answer,
    split_dialogue,
    unigram_f1,
)

DIALOGUE_TASKS_DIR = Path(gap_pipeline.scoring.dialogue.__file__).parent / "lm_eval_tasks"


def test_prompt_alternates_speakers_and_ends_with_the_next_tag():
    assert build_prompt(["Hi there. ", "Hello!", "How are you?"]) == (
        "User 1: Hi there.\nUser 2: Hello!\nUser 1: How are you?\nUser 2:"
    )
    assert build_prompt(["Hi.", "Hello!"]).endswith("\nUser 1:")


def test_last_turn_is_the_gold_reply():
    assert split_dialogue(["a", "b", " gold "]) == (["a", "b"], "gold")
    with pytest.raises(ValueError, match="1 turn"):
        split_dialogue(["only"])


@pytest.mark.parametrize(
    ("generated", "reply"),
    [
        (" I love red too.\nUser 1: why?", "I love red too."),
        (" Sure thing User 2: and more", "Sure thing"),
        ("  plain  ", "plain"),
        ("\nUser 1: nothing", ""),
    ],
)
def test_reply_is_cut_at_the_next_line_or_speaker(generated, reply):
    assert cut_reply(generated) == reply


def test_normalization_is_squad_style():
    assert normalize_answer("The  Cat, an apple & A dog!") == "cat apple dog"


def test_unigram_f1_on_hand_checked_examples():
    # pred {i, like, red, cars} vs gold {i, like, blue, cars, too}: 3 common; P 3/4, R 3/5 -> F1 2/3.
    assert unigram_f1("I like red cars.", "I like blue cars too") == pytest.approx(2 / 3)
    assert unigram_f1("The cat.", "cat") == 1.0  # articles and punctuation do not count
    assert unigram_f1("dog", "cat") == 0.0
    assert unigram_f1("", "cat") == 0.0
    # Repeated words count only as often as they appear in both: common 1, P 1/3, R 1/1 -> 0.5.
    assert unigram_f1("yes yes yes", "yes") == pytest.approx(0.5)


def test_replies_are_cut_where_generation_stops():
    # Generation stops at the template's `until`; scoring cuts at STOP_SEQUENCES: one list, said twice.
    template = (DIALOGUE_TASKS_DIR / "_dialogue_template.yaml").read_text().replace("!function", "")
    assert yaml.safe_load(template)["generation_kwargs"]["until"] == STOP_SEQUENCES
