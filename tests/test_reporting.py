import pandas as pd
import pytest

from gap_pipeline.core.tasks import ALL_TASKS, CLASSIFICATION_TASKS, DIALOGUE_TASKS, FAMILIES, family_average
from gap_pipeline.reporting.run_summary import PAPER_COLUMNS, paper_file, paper_row, score_table, summarize
from tests.conftest import SHARED

BASE = {t: 0.5 for t in CLASSIFICATION_TASKS} | {t: 0.10 for t in DIALOGUE_TASKS}
GAP = {t: 0.6 for t in CLASSIFICATION_TASKS} | {t: 0.12 for t in DIALOGUE_TASKS}


def _results(scores: dict[str, float], stderr: float) -> dict[str, dict[str, float]]:
    return {task: {"score": score, "stderr": stderr, "examples": 40} for task, score in scores.items()}


def test_summary_has_every_task_both_averages_and_deltas():
    summary = summarize(_results(BASE, 0.07), _results(GAP, 0.08))
    assert set(summary["tasks"]) == set(ALL_TASKS)
    assert summary["tasks"]["piqa"] == {"base": 0.5, "gap": 0.6, "delta": pytest.approx(0.1), "base_stderr": 0.07,
                                        "gap_stderr": 0.08, "examples": 40}
    assert all(isinstance(v, (int, float)) for task in summary["tasks"].values() for v in task.values())
    assert summary["averages"]["classification"]["delta"] == pytest.approx(0.1)
    assert summary["averages"]["dialogue"] == {"base": 0.10, "gap": 0.12, "delta": pytest.approx(0.02), "tasks": 4}


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
