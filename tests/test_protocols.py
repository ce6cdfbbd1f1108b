"""The protocols' arithmetic on hand-made trajectories: which step each keeps, each gain, and the selection bias."""

import json

import pytest

from gap_pipeline.core.tasks import TRAJECTORY_STEPS_FILE
from gap_pipeline.reporting.protocols import paper_criterion, paper_step, protocol_summary, step_scores
from gap_pipeline.reporting.run_summary import ModelScores


def _step(copa: list[float], wow: list[float]) -> ModelScores:
    """One step's per-example scores on 4 copa questions and 4 Wizard of Wikipedia replies."""
    examples = {"copa": dict(enumerate(copa)), "wizard_of_wikipedia": dict(enumerate(wow))}
    return ModelScores({task: {"score": sum(v.values()) / len(v), "stderr": None, "examples": len(v)}
                        for task, v in examples.items()}, examples)


# Step 2 is best on these (reported) examples; the selection slice kept step 1.
STEPS = {
    0: _step([1, 0, 0, 1], [0.10, 0.10, 0.10, 0.10]),
    1: _step([1, 0, 0, 1], [0.10, 0.12, 0.10, 0.10]),
    2: _step([1, 1, 0, 1], [0.12, 0.12, 0.10, 0.11]),
    3: _step([0, 0, 0, 1], [0.10, 0.10, 0.09, 0.10]),
}


def test_the_paper_protocol_keeps_the_best_step_on_the_reported_examples():
    assert paper_step(STEPS, "both") == 2
    assert paper_step(STEPS, "dialogue") == 2
    assert paper_step(STEPS, "classification") == 2
    flat = {k: STEPS[0] for k in range(3)}
    assert paper_step(flat, "both") == 0  # a tie keeps the earlier step: here the untouched model, a baseline row


def test_the_summary_gives_each_steps_gain_both_protocols_and_their_difference():
    found = protocol_summary(STEPS, kept=1, criterion="both")
    dialogue = found["trajectory"]["dialogue"]
    assert [entry["step"] for entry in dialogue] == [0, 1, 2, 3]
    assert dialogue[0] == {"step": 0, "delta": 0.0, "delta_ci95": [0.0, 0.0]}  # step 0 against itself
    assert dialogue[2]["delta"] == pytest.approx((0.12 + 0.12 + 0.10 + 0.11) / 4 - 0.10)
    assert found["trajectory"]["classification"][3]["delta"] == pytest.approx(-0.25)
    paper, disjoint = found["protocols"]["paper"], found["protocols"]["disjoint"]
    assert paper["step"] == 2 and disjoint["step"] == 1
    for family in ("classification", "dialogue"):
        bias = found["selection_bias"][family]
        assert bias["delta"] == pytest.approx(paper[family]["delta"] - disjoint[family]["delta"])
        low, high = bias["delta_ci95"]
        assert low <= bias["delta"] <= high
    assert found["selection_bias"]["classification"]["delta"] == pytest.approx(0.25)


def test_a_run_that_keeps_no_ranking_is_ranked_by_both_families():
    assert paper_criterion("last", ["classification", "dialogue"]) == "both"
    assert paper_criterion("both", ["dialogue"]) == "dialogue"
    assert paper_criterion("classification", ["classification", "dialogue"]) == "classification"


def test_step_scores_read_the_trajectory_stages_files(tmp_path):
    assert step_scores(_write(tmp_path / "off", {"enabled": False}, {})) is None
    rows = {"copa": [{"step": s, "doc_id": d, "acc": float(d == s)} for s in (0, 1) for d in range(2)]}
    record = {"enabled": True, "steps": [0, 1], "tasks": ["copa"], "scores": {"0": {"copa": 0.5}, "1": {"copa": 0.5}}}
    steps = step_scores(_write(tmp_path / "on", record, rows))
    assert steps[1].examples == {"copa": {0: 0.0, 1: 1.0}} and steps[0].scores == {"copa": 0.5}


def _write(folder, record, rows):
    folder.mkdir()
    (folder / TRAJECTORY_STEPS_FILE).write_text(json.dumps(record))
    for task, task_rows in rows.items():
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in task_rows))
    return folder
