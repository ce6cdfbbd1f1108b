import pandas as pd
import pytest

from gap_pipeline.benchmarks import ALL_TASKS, DIALOGUE_TASKS, MULTIPLE_CHOICE_TASKS
from gap_pipeline.reporting import PAPER_COLUMNS, kind_average, paper_row, score_table, summarize
from tests.conftest import SHARED

BASE = {t: 0.5 for t in MULTIPLE_CHOICE_TASKS} | {t: 0.10 for t in DIALOGUE_TASKS}
GAP = {t: 0.6 for t in MULTIPLE_CHOICE_TASKS} | {t: 0.12 for t in DIALOGUE_TASKS}


def test_summary_has_every_task_both_averages_and_deltas():
    summary = summarize(BASE, GAP)
    assert set(summary["tasks"]) == set(ALL_TASKS)
    assert summary["tasks"]["piqa"] == {"metric": "acc", "base": 0.5, "gap": 0.6, "delta": pytest.approx(0.1)}
    assert summary["averages"]["classification"]["delta"] == pytest.approx(0.1)
    assert summary["averages"]["dialog"] == {"base": 0.10, "gap": 0.12, "delta": pytest.approx(0.02), "tasks": 4}


def test_averages_cover_only_the_tasks_scored():
    assert kind_average({"copa": 0.4, "piqa": 0.6, "wizard_of_wikipedia": 0.9}, "classification") == 0.5
    assert kind_average({"copa": 0.4}, "dialog") is None


def test_paper_rows_use_the_published_columns():
    published = {kind: pd.read_csv(SHARED / "paper" / f"gap_runs_{kind}.csv") for kind in ("classification", "dialog")}
    for kind, table in published.items():
        row = paper_row(GAP, kind, corpus="github", index=17, epoch=3, model="smollm2-135m")
        assert list(row) == list(table.columns)
        assert row["corpora"] == "Git." and row["corpora"] in set(table["corpora"])
    assert set(PAPER_COLUMNS.values()) <= set(published["classification"].columns) | set(published["dialog"].columns)


def test_score_table_is_long_form_for_plots():
    rows = score_table({"copa": 0.5}, {"copa": 0.7})
    assert rows == [{"task": "copa", "model": "base", "metric": "acc", "score": 0.5},
                    {"task": "copa", "model": "gap", "metric": "acc", "score": 0.7}]
