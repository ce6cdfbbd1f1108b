"""Best-step selection: the slice is disjoint from what is reported, the ranking is right, the best weights are kept."""

from __future__ import annotations

import csv
import json
from functools import partial

import pytest
import torch
from safetensors.torch import load_file

from gap_pipeline.core.checks import Inputs, check_disjoint, check_splits
from gap_pipeline.core.errors import ParamsError
from gap_pipeline.core.params import TrackedParams, parse_params
from gap_pipeline.core.tasks import criterion_value, family_averages
from gap_pipeline.gap.selection import BestStep, SelectionSlice
from gap_pipeline.task_data import split_size
from tests.conftest import SHARED, with_shared_data


def test_a_reporting_limit_that_reaches_the_selection_slice_is_refused():
    check_disjoint("copa", split_size=100, examples=8, limit=92)  # rows 0..91 and 92..99: disjoint
    with pytest.raises(ParamsError) as error:
        check_disjoint("copa", split_size=100, examples=8, limit=93)
    message = str(error.value)
    assert "eval.tasks.copa.limit = 93" in message and "gap.select.examples = 8" in message
    assert "limit + examples <= 100" in message
    with pytest.raises(ParamsError):
        check_disjoint("copa", split_size=100, examples=8, limit=None)  # null: the whole split


def test_the_slice_is_the_last_examples_of_each_split(raw_params):
    raw = with_shared_data(raw_params)
    raw["gap"]["select"] |= {"examples": 5, "tasks": ["copa", "wizard_of_wikipedia"]}
    selection = SelectionSlice.build(parse_params(raw), SHARED / "benchmarks")
    assert selection.samples["copa"] == [95, 96, 97, 98, 99]  # the copa mirror has 100 validation rows
    assert selection.samples["wizard_of_wikipedia"] == list(range(962, 967))
    raw["gap"]["select"]["split"] = "test"  # arc_easy has a test split of 2376 rows; copa has none
    raw["gap"]["select"]["tasks"] = ["arc_easy", "wizard_of_wikipedia"]
    with pytest.raises(FileNotFoundError, match="no test split for task 'wizard_of_wikipedia'"):
        SelectionSlice.build(parse_params(raw), SHARED / "benchmarks")


SIZES = Inputs(split_size=partial(split_size, SHARED / "benchmarks"), corpus_size=len)  # no corpus read


def test_the_limits_are_checked_against_the_slice_only_on_the_same_split(raw_params):
    raw = with_shared_data(raw_params)
    raw["gap"]["select"] |= {"examples": 5, "tasks": ["copa", "arc_easy", "wizard_of_wikipedia"]}
    assert check_splits(TrackedParams(parse_params(raw)), SIZES) == ["copa", "arc_easy", "wizard_of_wikipedia"]
    raw["eval"]["tasks"]["copa"]["limit"] = 96  # copa's validation split has 100 rows: 96 + 5 > 100
    with pytest.raises(ParamsError, match="eval.tasks.copa.limit = 96"):
        check_splits(TrackedParams(parse_params(raw)), SIZES)
    raw["eval"]["tasks"]["copa"]["limit"] = 40
    raw["eval"]["tasks"]["arc_easy"] |= {"split": "test", "limit": None}  # reports on test, selects on validation
    assert check_splits(TrackedParams(parse_params(raw)), SIZES) == ["copa", "wizard_of_wikipedia"]


def test_criteria_rank_by_their_family_and_both_by_relative_gains():
    start = {"classification": 0.5, "dialogue": 0.1}
    step = {"classification": 0.49, "dialogue": 0.11}
    assert criterion_value("classification", step, start) == 0.49
    assert criterion_value("dialogue", step, start) == 0.11
    # -2% on accuracy, +10% on F1: the relative sum favours the step, a plain sum would not.
    assert criterion_value("both", step, start) == pytest.approx(-0.02 + 0.10)
    assert family_averages({"copa": 0.5, "piqa": 0.7, "wizard_of_wikipedia": 0.1}) == {
        "classification": pytest.approx(0.6), "dialogue": 0.1}


def test_best_step_keeps_the_first_best_weights_and_restores_them(tiny_model, raw_params):
    select = parse_params(raw_params).gap.select.model_copy(update={"criterion": "classification"})
    best = BestStep(select)
    weights = []
    for step, accuracy in enumerate([0.5, 0.7, 0.7, 0.6]):
        with torch.no_grad():
            for p in tiny_model.parameters():
                p.add_(0.1)
        weights.append({k: v.clone() for k, v in tiny_model.state_dict().items()})
        best.observe(step, {"copa": accuracy, "wizard_of_wikipedia": 0.1}, tiny_model)
    assert best.best_step == 1  # the tie at step 2 goes to the earlier step
    assert [row["criterion"] for row in best.curve] == [0.5, 0.7, 0.7, 0.6]
    best.restore(tiny_model)
    assert all(torch.equal(v, weights[1][k]) for k, v in tiny_model.state_dict().items())


def test_gap_stage_keeps_the_best_step_of_its_selection_curve(stage_dir, tiny_base):
    corpus = stage_dir.write_corpus([{"doc_id": 1, "text": " ".join(f"w{i % 50 + 1}" for i in range(60))}])
    stage_dir.set("gap.steps", 3)
    stage_dir.set("gap.lr", 5.0e-2)  # a random tiny model needs big steps for its scores to move
    result = stage_dir.gap(tiny_base, corpus)
    assert result.returncode == 0, result.stderr
    train = json.loads((stage_dir.root / "metrics/gap/train.json").read_text())
    with open(stage_dir.root / "metrics/gap/selection.tsv") as f:
        curve = list(csv.DictReader(f, delimiter="\t"))
    assert [int(row["step"]) for row in curve] == [0, 1, 2, 3]
    assert list(curve[0])[:4] == ["step", "criterion", "classification", "dialogue"]
    values = [float(row["criterion"]) for row in curve]
    assert train["steps"] == values.index(max(values)) and train["steps_run"] == 3
    assert train["selection"]["best"] == pytest.approx(max(values))
    # The saved weights are those of the kept step: the same as a run told to stop there.
    kept = load_file(stage_dir.root / "models/gap/model.safetensors")
    stage_dir.set("gap.steps", train["steps"])
    stage_dir.set("gap.select.criterion", "last")
    result = stage_dir.gap(tiny_base, corpus, out="models/stopped", metrics="metrics/stopped")
    assert result.returncode == 0, result.stderr
    stopped = load_file(stage_dir.root / "models/stopped/model.safetensors")
    assert all(torch.equal(kept[name], stopped[name]) for name in stopped)
    assert (stage_dir.root / "metrics/stopped/selection.tsv").read_text().strip() == "step\tcriterion"


def test_the_papers_protocol_selects_on_the_first_examples_the_reported_ones(raw_params):
    raw = with_shared_data(raw_params)
    raw["gap"]["select"] |= {"protocol": "paper", "examples": 40, "tasks": ["copa", "wizard_of_wikipedia"]}
    raw["eval"]["tasks"]["copa"]["limit"] = 100  # overlaps on purpose: no refusal under this protocol
    selection = SelectionSlice.build(parse_params(raw), SHARED / "benchmarks")
    assert selection.samples["copa"] == list(range(40))
    assert check_splits(TrackedParams(parse_params(raw)), SIZES) == []
