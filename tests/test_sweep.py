"""Sweeps: the queued grid, reading experiments back, and the report against the paper's published runs."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gap_pipeline.core.errors import ParamsError
from gap_pipeline.core.tasks import ALL_TASKS, CLASSIFICATION_TASKS
from gap_pipeline.reporting.run_summary import paper_file
from gap_pipeline.reporting.sweep_report import (
    compare_with_paper,
    paper_baselines,
    protocol_points,
    protocol_table,
    write_report,
)
from gap_pipeline.sweep import experiment_name, grid_points, parse_indices, queue_commands, run_rows
from gap_pipeline.sweep.clone_run import PointFailed, PointRefused, apply_settings, failure, last_line, stages_run
from gap_pipeline.sweep.experiments import SUMMARY_FILE, TRAIN_FILE, export_runs, finished_runs, read_runs, rows_of
from tests.conftest import PROJECT_ROOT, SHARED


def test_indices_read_like_a_page_range():
    assert parse_indices("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(ParamsError, match="--indices 'a-b'"):
        parse_indices("a-b")


def test_the_grid_is_one_queued_experiment_per_model_corpus_and_index():
    commands = queue_commands(["github", "tdec"], [0, 1], ["smollm2-135m", "gemma3-270m"], ["gap.steps=15"])
    assert len(commands) == 8
    first = commands[0]
    assert first[:4] == ["dvc", "exp", "run", "--queue"]
    # The other -S pairs are part of the name (a hash), so a point with other params is another experiment.
    assert first[first.index("--name") + 1] == experiment_name("github", 0, "smollm2-135m", ["gap.steps=15"])
    assert first[first.index("--name") + 1].startswith("gap-github-0-smollm2-135m-")
    pairs = [first[i + 1] for i, arg in enumerate(first) if arg == "-S"]
    assert pairs == ["gap.corpus=github", "gap.index=0", "model.name=smollm2-135m", "gap.steps=15"]


def test_queueing_pins_no_path():
    """Every stage reads its data inside the repo, so a queued copy needs no path rewritten to the machine's."""
    shown = subprocess.run([sys.executable, "-m", "gap_pipeline.sweep", "queue", "--corpora", "github", "tdec",
                            "--indices", "0-1", "--dry-run"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert len(shown) == 4
    assert all(pair in {"gap.corpus=github", "gap.corpus=tdec", "gap.index=0", "gap.index=1"}
               for line in shown for pair in line.split()[line.split().index("-S") + 1 :: 2])


def _summary(base: float, gap: float, kept: int) -> dict:
    tasks = {t: {"base": base if t in CLASSIFICATION_TASKS else base / 5,
                 "gap": gap if t in CLASSIFICATION_TASKS else gap / 5} for t in ALL_TASKS}
    return {"tasks": tasks, "run": {"source_row": 40 + kept, "kept_step": kept},
            "reference": {"gemma3-270m": {"classification": 0.55, "dialogue": 0.11}}}


COMMITTED: dict[tuple[str, str], dict] = {}  # (experiment commit, path): the metrics file that commit holds


def _as_dvc_shows(metrics: object) -> object:
    """What `dvc exp show --json` keeps of a metrics file: numbers and strings; a list (an interval, the
    trajectory) is dropped, as DVC does."""
    if isinstance(metrics, dict):
        kept = {key: _as_dvc_shows(value) for key, value in metrics.items()}
        return {key: value for key, value in kept.items() if value not in (None, {})}
    return metrics if isinstance(metrics, int | float | str) else None


def _exp_show(summaries: dict[str, dict | None]) -> list[dict]:
    """The shape `dvc exp show --json` prints: baselines, each with its experiments' revs; each finished one's
    summary committed whole in ``COMMITTED``, under a commit named by its content."""
    revs = []
    for name, summary in summaries.items():
        rev = hashlib.sha1(json.dumps([name, summary], sort_keys=True).encode()).hexdigest()
        COMMITTED.update({(rev, SUMMARY_FILE): summary, (rev, TRAIN_FILE): {"steps": 5}})
        data = {"params": {"params.yaml": {"data": {"model": {"name": "smollm2-135m"},
                                                    "gap": {"corpus": name.split("-")[1], "index": 1}}}},
                "metrics": {} if summary is None else {SUMMARY_FILE: {"data": _as_dvc_shows(summary)}}}
        revs.append({"revs": [{"rev": rev, "name": name, "data": data, "error": None}]})
    return [{"rev": "workspace", "data": {}}, {"rev": "a" * 40, "data": {}, "experiments": revs}]


def _committed(rev: str, path: str) -> dict:
    return COMMITTED[(rev, path)]


def _rows(shown: list[dict]) -> list[dict]:
    return run_rows(shown, read=_committed)


def test_experiments_are_read_back_and_unfinished_ones_skipped():
    rows = _rows(_exp_show({"gap-github-1": _summary(0.5, 0.52, 3), "gap-tdec-1": None}))
    assert len(rows) == 1
    row = rows[0]
    assert (row["experiment"], row["corpus"], row["index"], row["source_row"], row["epoch"]) == (
        "gap-github-1", "github", 1, 43, 3)
    assert row["gap"]["piqa"] == 0.52 and row["base"]["wizard_of_wikipedia"] == pytest.approx(0.1)
    assert row["protocol"] == "disjoint"


def test_queued_and_running_experiments_are_not_read_as_finished():
    """Until it finishes, an experiment shows its baseline commit's metrics: its executor's state tells them apart."""
    shown = _exp_show({"gap-github-1": _summary(0.5, 0.52, 3), "gap-github-2": _summary(0.5, 0.52, 3),
                       "gap-tdec-1": _summary(0.5, 0.49, 1), "gap-pile_cc-1": _summary(0.5, 0.49, 1)})
    for experiment, state in zip(shown[1]["experiments"], ("queued", "running", "failed", "success"), strict=True):
        experiment["executor"] = {"state": state, "name": "dvc-task"}
    assert [run["name"] for run in finished_runs(shown, _committed)] == ["gap-pile_cc-1"]


def test_exported_runs_read_back_as_the_same_report_rows(tmp_path: Path):
    """A study committed as one file per run gives `collect --runs` the rows `dvc exp show` gave."""
    shown = _exp_show({"gap-github-1": _summary(0.5, 0.52, 3), "gap-tdec-1": _summary(0.5, 0.49, 1),
                       "gap-pile_cc-1": None})
    written = export_runs(finished_runs(shown, _committed), tmp_path / "study")
    assert sorted(path.name for path in written) == ["gap-github-1.json", "gap-tdec-1.json"]  # finished ones
    assert rows_of(read_runs(tmp_path / "study")) == _rows(shown)
    (tmp_path / "study" / "stray.json").write_text('{"summary": {}}')
    with pytest.raises(RuntimeError, match=r"stray.json: no params or summary; write the folder with"):
        read_runs(tmp_path / "study")


def test_runs_selected_on_their_reported_examples_are_marked_optimistic():
    shown = _exp_show({"gap-github-1": _summary(0.5, 0.52, 3)})
    shown[1]["experiments"][0]["revs"][0]["data"]["params"]["params.yaml"]["data"]["gap"]["select"] = {
        "protocol": "paper"}
    comparison = compare_with_paper(_rows(shown), SHARED / "paper")
    assert "smollm2-135m (paper protocol: optimistic)" in set(comparison["who"])


def test_a_grid_point_run_again_with_the_same_params_counts_once_the_newest():
    older = _exp_show({"gap-github-1": _summary(0.5, 0.52, 3)})
    newer = _exp_show({"gap-github-1": _summary(0.5, 0.4, 2)})
    for shown, stamp in ((older, "2026-11-22T10:00:00"), (newer, "2026-11-23T10:00:00")):
        shown[1]["experiments"][0]["revs"][0]["data"]["timestamp"] = stamp
    for shown in ([*newer, *older[1:]], [*older, *newer[1:]]):  # two baseline commits, in either order
        assert [(row["epoch"], row["gap"]["piqa"]) for row in _rows(shown)] == [(2, 0.4)]

    other = _exp_show({"gap-github-1": _summary(0.5, 0.52, 3)})
    other[1]["experiments"][0]["revs"][0]["data"]["params"]["params.yaml"]["data"]["gap"]["steps"] = 15
    assert len(_rows([*newer, *other[1:]])) == 2  # another param: another run


def test_paper_baselines_are_the_published_ones():
    for family, published in (("classification", {"350M": 0.4572, "1.3B": 0.5075, "2.7B": 0.5173}),
                              ("dialogue", {"350M": 0.1174, "1.3B": 0.1299, "2.7B": 0.1353})):
        found = paper_baselines(pd.read_csv(SHARED / "paper" / paper_file(family)))
        assert {m: round(v, 4) for m, v in found.items()} == published


def test_report_counts_runs_above_baseline_and_mean_gain(tmp_path: Path):
    shown = _exp_show({"gap-github-1": _summary(0.5, 0.52, 3), "gap-pile_cc-1": _summary(0.5, 0.5, 0)})
    runs = _rows(shown)
    comparison = compare_with_paper(runs, SHARED / "paper").set_index(["family", "corpus", "who"])
    ours = comparison.loc[("classification", "Git.", "smollm2-135m")]
    assert ours["runs"] == 1 and ours["above_baseline"] == 1.0 and ours["mean_gain"] == pytest.approx(0.02)
    kept_base = comparison.loc[("dialogue", "CC", "smollm2-135m")]
    assert kept_base["above_baseline"] == 0.0 and kept_base["mean_gain"] == 0.0
    paper = comparison.loc[("dialogue", "Git.", "paper OPT-350M")]
    assert paper["runs"] == 100 and paper["above_baseline"] == 1.0

    text = write_report(runs, tmp_path, SHARED / "paper")
    assert "2 runs collected" in text and "paper OPT-350M: above" in text
    with open(tmp_path / "runs_dialogue.csv") as f:
        table = list(csv.DictReader(f))
    paper_columns = next(csv.reader(open(SHARED / "paper" / "gap_runs_dialog.csv")))
    assert list(table[0]) == paper_columns
    assert table[0]["corpora"] == "baseline" and [r["corpora"] for r in table[1:]] == ["CC", "Git."]
    assert {r["epoch"] for r in table[1:]} == {"0", "3"}
    assert (tmp_path / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "figure1.tsv") as f:
        series = {row["series"] for row in csv.DictReader(f, delimiter="\t")}
    assert series == {"GAP smollm2-135m", "baseline smollm2-135m", "reference gemma3-270m"}


def test_a_sweep_of_multiple_choice_tasks_alone_is_collected(tmp_path: Path):
    """No dialogue task configured: the report covers the family that was scored, and draws it alone."""
    summary = _summary(0.5, 0.52, 3)
    summary["tasks"] = {task: scores for task, scores in summary["tasks"].items() if task in CLASSIFICATION_TASKS}
    summary["reference"] = {"gemma3-270m": {"classification": 0.55, "dialogue": None}}
    runs = _rows(_exp_show({"gap-github-1": summary}))
    write_report(runs, tmp_path, SHARED / "paper")
    with open(tmp_path / "comparison.csv") as f:
        assert {row["family"] for row in csv.DictReader(f)} == {"classification"}
    assert not (tmp_path / "runs_dialogue.csv").exists()
    assert (tmp_path / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_keeps_each_models_runs_apart():
    """Two post-trained models in one sweep: each is its own series with its own mean, never pooled."""
    from gap_pipeline.reporting.sweep_report import figure_points, runs_by_series

    (smollm,) = _rows(_exp_show({"gap-github-1": _summary(0.5, 0.52, 3)}))
    (other,) = _rows(_exp_show({"gap-github-1": _summary(0.5, 0.56, 2)}))
    gemma = {**other, "model": "gemma3-270m"}
    series = runs_by_series(pd.DataFrame(figure_points([smollm, gemma])), "classification")
    assert {name: {c: list(ys) for c, ys in per.items()} for name, per in series.items()} == {
        "GAP smollm2-135m": {"Git.": [pytest.approx(0.52)]},
        "GAP gemma3-270m": {"Git.": [pytest.approx(0.56)]},
    }


def test_across_runs_carries_intervals_and_a_sign_test():
    from gap_pipeline.reporting.statistics import wilson_interval
    from gap_pipeline.reporting.sweep_report import across_runs

    found = across_runs(np.array([0.02, 0.01, 0.0, -0.01, 0.03]))
    assert found["runs"] == 5 and found["above_baseline"] == 0.6
    assert (found["above_ci95_low"], found["above_ci95_high"]) == wilson_interval(3, 5)
    assert found["sign_test_p"] == pytest.approx(0.625)  # 3 above, 1 below: 2 * (1 + 4) / 16
    assert found["mean_gain"] == pytest.approx(0.01)
    assert found["mean_gain_ci95_low"] < found["mean_gain"] < found["mean_gain_ci95_high"]
    paper = compare_with_paper([], SHARED / "paper").set_index(["family", "corpus", "who"])
    git = paper.loc[("dialogue", "Git.", "paper OPT-350M")]
    assert git["runs"] == 100 and git["above_ci95_low"] > 0.95 and git["sign_test_p"] < 1e-20


def test_names_are_equal_exactly_when_the_grid_params_are():
    assert experiment_name("github", 3, None) == "gap-github-3"
    assert experiment_name("github", 3, None, ["gap.steps=10", "gap.lr=1e-4"]) == experiment_name(
        "github", 3, None, ["gap.lr=1e-4", "gap.steps=10"])  # order of -S does not matter
    assert experiment_name("github", 3, None, ["gap.steps=10"]) != experiment_name("github", 3, None, ["gap.steps=9"])
    with pytest.raises(ParamsError, match="-S 'gap.steps': expected key=value"):
        grid_points(["github"], [0], extra=["gap.steps"])


def test_the_shared_stages_see_every_param_but_the_text():
    (point,) = grid_points(["tdec"], [4], ["gemma3-270m"], ["gap.steps=2"])
    assert point.settings == ("gap.corpus=tdec", "gap.index=4", "model.name=gemma3-270m", "gap.steps=2")
    assert point.shared_settings == ("model.name=gemma3-270m", "gap.steps=2")


def test_settings_are_written_as_dvc_reads_them(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "gap:\n  steps: 5\n  lr: 5.0e-5\nmodel:\n  name: a\neval:\n  tasks:\n    copa: {limit: 40}\n")
    apply_settings(tmp_path, ("gap.steps=10", "model.name=b/c", "eval.tasks.copa.limit=null"))
    written = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert written["gap"] == {"steps": 10, "lr": 5.0e-5}  # the untouched value kept
    assert written["model"]["name"] == "b/c" and written["eval"]["tasks"]["copa"]["limit"] is None


def test_a_refused_point_is_told_from_a_crash_by_its_error_line():
    refused = subprocess.CompletedProcess([], 255, "", "error: gap.index = 9 but corpus github has 4 texts\n"
                                          "ERROR: failed to reproduce 'check_params': ..., exited with 2\n")
    assert isinstance(failure("gap-github-9", refused), PointRefused)
    assert failure("gap-github-9", refused).line == "error: gap.index = 9 but corpus github has 4 texts"
    crashed = subprocess.CompletedProcess([], 255, "", "Traceback ...\nMemoryError\nERROR: failed, exited with 1\n")
    assert isinstance(failure("gap-github-9", crashed), PointFailed)
    assert last_line("\n\n") == "(no output)"
    exit_255 = subprocess.CompletedProcess([], 255, "", "ERROR: failed to run: python x, exited with 255\n")
    assert isinstance(failure("p", exit_255), PointFailed)


def test_stages_run_and_restored_are_read_from_dvcs_output():
    output = ("Running stage 'gap':\n> python ...\n"
              "Stage 'evaluate@base-copa' is cached - skipping run, checking out outputs\n")
    assert stages_run(output) == {"ran": ["gap"], "restored": ["evaluate@base-copa"]}


def _with_trajectory(summary: dict, gains: list[float], paper: int, kept: int) -> dict:
    """A summary with a trajectory: the same gains by step in both families, the protocols' steps given."""
    entry = {f: [{"step": s, "delta": g, "delta_ci95": [g - 0.01, g + 0.01]} for s, g in enumerate(gains)]
             for f in ("classification", "dialogue")}

    def gain(step: int) -> dict:
        return {f: {"delta": gains[step], "delta_ci95": [gains[step] - 0.01, gains[step] + 0.01]} for f in entry}

    return summary | {"trajectory": entry, "protocols": {"paper": {"step": paper, **gain(paper)},
                                                         "disjoint": {"step": kept, **gain(kept)}},
                      "selection_bias": {f: {"delta": gains[paper] - gains[kept], "delta_ci95": [0.0, 0.1]}
                                         for f in entry}}


def test_collect_reports_the_gain_by_step_and_both_protocols_with_intervals(tmp_path: Path):
    shown = _exp_show({"gap-github-1": _with_trajectory(_summary(0.5, 0.5, 0), [0.0, 0.02, 0.01], 1, 0),
                       "gap-github-2": _with_trajectory(_summary(0.5, 0.49, 2), [0.0, -0.01, -0.01], 0, 2)})
    shown[1]["experiments"][1]["revs"][0]["data"]["params"]["params.yaml"]["data"]["gap"]["index"] = 2
    # `dvc exp show` drops lists: the trajectories come from the experiments' commits, whole.
    assert "trajectory" not in shown[1]["experiments"][0]["revs"][0]["data"]["metrics"][SUMMARY_FILE]["data"]
    runs = _rows(shown)
    text = write_report(runs, tmp_path, SHARED / "paper")
    assert "Under each protocol, on the 2 runs with a trajectory" in text
    steps = pd.read_csv(tmp_path / "trajectory.csv")
    step1 = steps[(steps["family"] == "dialogue") & (steps["step"] == 1)].iloc[0]
    assert step1["runs"] == 2 and step1["mean_gain"] == pytest.approx(0.005)
    assert step1["mean_gain_ci95_low"] <= 0.005 <= step1["mean_gain_ci95_high"]
    protocols = pd.read_csv(tmp_path / "protocols.csv").set_index(["family", "protocol"])
    paper, disjoint = protocols.loc[("dialogue", "paper")], protocols.loc[("dialogue", "disjoint")]
    assert paper["above_baseline"] == 0.5 and disjoint["above_baseline"] == 0.0  # gains 0.02, 0.0 vs 0.0, -0.01
    assert paper["above_ci95_low"] < 0.5 < paper["above_ci95_high"]  # Wilson, 2 runs
    bias = protocols.loc[("dialogue", "selection_bias")]
    assert bias["mean_gain"] == pytest.approx((0.02 + 0.01) / 2)
    # The last step, kept with no selection: gains 0.01 and -0.01; the paper's choice adds 0.01 and 0.01 to it.
    last = protocols.loc[("dialogue", "last")]
    assert last["mean_gain"] == pytest.approx(0.0) and last["above_baseline"] == 0.5
    over_last = protocols.loc[("dialogue", "selection_over_last")]
    assert over_last["mean_gain"] == pytest.approx(0.01)
    comparison = pd.read_csv(tmp_path / "comparison.csv")
    assert set(comparison["protocol"]) == {"paper", "disjoint"}
    assert "smollm2-135m (paper protocol)" in set(comparison["who"])
    for figure in ("trajectory.png", "protocols.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_paper_tables_own_best_step_per_family_is_read_off_the_trajectory():
    """The paper's tables chose each family's best step apart; the model's one kept step (``both``) cannot."""
    def entries(gains: list[float]) -> list[dict]:
        return [{"step": s, "delta": g, "delta_ci95": [g, g]} for s, g in enumerate(gains)]

    trajectory = {"classification": entries([0.0, 0.03, -0.01]), "dialogue": entries([0.0, -0.002, 0.004])}
    run = {"model": "m", "corpus": "github", "source_row": 7, "trajectory": trajectory,
           "protocols": {"paper": {"step": 1, "classification": {"delta": 0.03}, "dialogue": {"delta": -0.002}},
                         "disjoint": {"step": 2, "classification": {"delta": -0.01}, "dialogue": {"delta": 0.004}}},
           "selection_bias": {"classification": {"delta": 0.04}, "dialogue": {"delta": -0.006}}}
    untouched = run | {"source_row": 8, "trajectory": {f: entries([0.0, -0.01, -0.01]) for f in trajectory}}
    points = protocol_points([run, untouched]).set_index(["index", "family"])
    assert points.loc[(7, "dialogue"), "per_family_step"] == 2 and points.loc[(7, "dialogue"), "per_family"] == 0.004
    assert points.loc[(7, "classification"), "per_family_step"] == 1
    assert points.loc[(7, "dialogue"), "selection_bias_per_family"] == pytest.approx(0.0)
    assert points.loc[(8, "dialogue"), "per_family_step"] == 0  # no step beats the untouched model: step 0
    table = protocol_table(points.reset_index()).set_index(["family", "protocol"])
    assert table.loc[("dialogue", "per_family"), "above_baseline"] == 0.5
    assert table.loc[("dialogue", "paper"), "above_baseline"] == 0.0
