import numpy as np
import pandas as pd
import pytest

from gap_pipeline.core.tasks import ALL_TASKS, CLASSIFICATION_TASKS, DIALOGUE_TASKS, FAMILIES, family_average
from gap_pipeline.reporting.run_summary import (
    PAPER_COLUMNS,
    ModelScores,
    gain_table,
    paper_file,
    paper_row,
    score_table,
    summarize,
)
from gap_pipeline.reporting.statistics import Z80, Z95
from tests.conftest import SHARED

BASE = {t: 0.5 for t in CLASSIFICATION_TASKS} | {t: 0.10 for t in DIALOGUE_TASKS}
GAP = {t: 0.6 for t in CLASSIFICATION_TASKS} | {t: 0.12 for t in DIALOGUE_TASKS}


def _model(scores: dict[str, float], stderr: float, examples: dict[str, dict] | None = None) -> ModelScores:
    results = {task: {"score": score, "stderr": stderr, "examples": 40} for task, score in scores.items()}
    return ModelScores(results, examples or {})


def test_summary_has_every_task_both_averages_and_deltas():
    summary = summarize(_model(BASE, 0.07), _model(GAP, 0.08))
    assert set(summary["tasks"]) == set(ALL_TASKS)
    assert summary["tasks"]["piqa"] == {"base": 0.5, "gap": 0.6, "delta": pytest.approx(0.1), "examples": 40}
    assert summary["averages"]["classification"]["delta"] == pytest.approx(0.1)
    assert summary["averages"]["dialogue"] == {"base": 0.10, "gap": 0.12, "delta": pytest.approx(0.02), "tasks": 4}


def test_paired_statistics_come_from_the_examples_both_models_scored():
    base_copa = {i: float(i % 2) for i in range(40)}  # 0, 1, 0, 1, ...
    gap_copa = dict(base_copa) | {0: 1.0, 2: 1.0}  # two examples flip to right
    base_wow = {i: 0.1 for i in range(24)}
    gap_wow = {i: 0.1 + (0.05 if i < 12 else -0.05) for i in range(24)}
    base = _model({"copa": 0.5, "wizard_of_wikipedia": 0.1}, 0.08, {"copa": base_copa, "wizard_of_wikipedia": base_wow})
    gap = _model({"copa": 0.55, "wizard_of_wikipedia": 0.1}, 0.08, {"copa": gap_copa, "wizard_of_wikipedia": gap_wow})
    summary = summarize(base, gap, {"bigger": base})
    copa = summary["tasks"]["copa"]
    assert copa["changed"] == 2 and copa["delta_ci95"][0] <= 0.0 < 0.05 <= copa["delta_ci95"][1] <= 0.125
    classification = summary["averages"]["classification"]
    assert classification["changed"] == 2 and classification["tasks"] == 1
    # One task of 40 differences, two of them 1: sd = sqrt((2 - 40 * 0.05^2) / 39), SE = sd / sqrt(40).
    se = np.sqrt((2 - 40 * 0.05**2) / 39) / np.sqrt(40)
    assert classification["mde80"] == pytest.approx((Z95 + Z80) * se)
    dialogue = summary["averages"]["dialogue"]
    assert dialogue["changed"] == 24 and dialogue["delta_ci95"][0] < 0 < dialogue["delta_ci95"][1]
    # Against the reference (here the base model itself): GAP's paired delta and its interval.
    assert summary["gap_vs_reference"]["bigger"]["classification"]["delta"] == pytest.approx(0.05)
    assert len(summary["gap_vs_reference"]["bigger"]["dialogue"]["delta_ci95"]) == 2


def test_gain_table_carries_each_scored_tasks_interval_and_each_family_average():
    base_copa = {i: float(i % 2) for i in range(40)}
    gap_copa = dict(base_copa) | {0: 1.0, 2: 1.0}
    base = _model({"copa": 0.5, "wizard_of_wikipedia": 0.1}, 0.08, {"copa": base_copa})
    gap = _model({"copa": 0.55, "wizard_of_wikipedia": 0.1}, 0.08, {"copa": gap_copa})
    summary = summarize(base, gap)
    rows = {(row["family"], row["task"]): row for row in gain_table(summary)}
    # Dialogue has no per-example predictions here: no interval, so no row (a bare point would claim certainty).
    assert list(rows) == [("classification", "copa"), ("classification", "average")]
    copa = summary["tasks"]["copa"]
    assert rows["classification", "copa"] == {"family": "classification", "task": "copa", "metric": "acc",
                                              "gain": copa["delta"], "low": copa["delta_ci95"][0],
                                              "high": copa["delta_ci95"][1]}
    assert rows["classification", "average"]["gain"] == summary["averages"]["classification"]["delta"]


def test_averages_cover_only_the_tasks_scored():
    assert family_average({"copa": 0.4, "piqa": 0.6, "wizard_of_wikipedia": 0.9}, "classification") == 0.5
    assert family_average({"copa": 0.4}, "dialogue") is None


def test_paper_rows_use_the_published_columns():
    published = {family: pd.read_csv(SHARED / "paper" / paper_file(family)) for family in FAMILIES}
    for family, table in published.items():
        row = paper_row(GAP, family, corpus="github", index=17, epoch=3, model="smollm2-135m")
        assert list(row) == list(table.columns)
        assert row["corpora"] == "Git." and row["corpora"] in set(table["corpora"])
    assert set(PAPER_COLUMNS.values()) <= set(published["classification"].columns) | set(published["dialogue"].columns)


def test_score_table_is_long_form_for_plots():
    rows = score_table({"copa": 0.5}, {"copa": 0.7})
    assert rows == [{"task": "copa", "model": "base", "metric": "acc", "score": 0.5},
                    {"task": "copa", "model": "gap", "metric": "acc", "score": 0.7}]
