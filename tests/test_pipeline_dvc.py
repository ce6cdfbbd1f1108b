"""End to end: real `dvc repro` on the real SmolLM2 model and the paper's corpora, at a tiny size."""

import json

import pytest

from tests.conftest import SHARED
from tests.dvc_project import DvcProject

pytestmark = pytest.mark.slow

TINY = {
    "corpora": {name: {"n": 3} for name in ("github", "pile_cc", "tdec")},
    "gap": {"steps": 1, "max_length": 32},
    "eval": {
        "data_dir": str(SHARED / "benchmarks"),
        "batch_size": 4,
        # One multiple-choice and one dialogue task, a few examples each.
        "tasks": {"copa": {"split": "validation", "limit": 4},
                  "wizard_of_wikipedia": {"split": "validation", "limit": 2}},
    },
}
EVALUATIONS = {f"evaluate@{model}-{task}" for model in ("base", "gap") for task in ("copa", "wizard_of_wikipedia")}
GAP_EVALUATIONS = {stage for stage in EVALUATIONS if "@gap-" in stage}
ALL_STAGES = {
    "prepare_model", "sample_corpus@github", "sample_corpus@pile_cc", "sample_corpus@tdec", "gap",
    *EVALUATIONS, "aggregate",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> DvcProject:
    project = DvcProject.create(tmp_path_factory.mktemp("gap") / "project", TINY)
    ran, _ = project.repro()
    assert ran == ALL_STAGES
    project.commit("first repro")
    return project


def test_repro_leaves_a_post_trained_model_and_its_metrics(project):
    train = project.read_json("metrics/gap/train.json")
    assert train["steps"] == 1 and 2 <= train["tokens"] <= 32
    assert train["final_loss"] > train["initial_loss"]  # the ascent climbed
    rows = (project.root / "metrics/gap/steps.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "loss", "seconds", "tokens_per_second"] and len(rows) == 2
    run = project.read_json("models/gap/gap_run.json")
    sampled = (project.root / "data/corpora/github.jsonl").read_text().splitlines()
    assert str(run["text"]["doc_id"]) in sampled[0]
    assert run["base_model"]["parameters"] == project.read_json("models/base/model_info.json")["parameters"]
    assert (project.root / "models/gap/model.safetensors").stat().st_size > 100_000_000
    assert project.changed_stages() == set()


def test_a_corpus_seed_reruns_only_that_corpus(project):
    project.set_param("corpora.pile_cc.seed", 1)
    assert project.changed_stages() == {"sample_corpus@pile_cc"}
    assert project.repro() == ({"sample_corpus@pile_cc"}, set())
    # Back to the old seed: the run-cache restores the old sample instead of recomputing it.
    project.set_param("corpora.pile_cc.seed", 0)
    assert project.repro() == (set(), {"sample_corpus@pile_cc"})
    assert project.changed_stages() == set()


def test_gap_steps_rerun_gap_and_its_scores_never_the_baseline(project):
    first = project.read_json("metrics/gap/train.json")
    project.set_param("gap.steps", 2)
    assert project.changed_stages() == {"gap", "aggregate"}
    assert project.repro() == ({"gap", *GAP_EVALUATIONS, "aggregate"}, set())
    assert project.read_json("metrics/gap/train.json")["steps"] == 2
    # Back to one step: everything downstream of gap comes back from the run-cache.
    project.set_param("gap.steps", 1)
    assert project.repro() == (set(), {"gap", *GAP_EVALUATIONS, "aggregate"})
    assert project.read_json("metrics/gap/train.json") == first


def test_evaluation_leaves_every_task_score_and_the_summary(project):
    for stage in EVALUATIONS:
        model, task = stage.removeprefix("evaluate@").split("-", 1)
        record = project.read_json(f"metrics/eval/{model}/{task}.json")
        metric = "f1" if task == "wizard_of_wikipedia" else "acc"
        assert 0.0 <= record["metrics"][metric] <= 1.0
        assert record["examples"] == TINY["eval"]["tasks"][task]["limit"]
        assert record["split"] == "validation" and record["versions"]["lm-eval"]
        lines = (project.root / f"data/predictions/{model}/{task}.jsonl").read_text().splitlines()
        assert len(lines) == record["examples"]
    summary = project.read_json("metrics/summary/summary.json")
    copa = summary["tasks"]["copa"]
    assert copa["delta"] == pytest.approx(copa["gap"] - copa["base"])
    assert summary["averages"]["dialog"]["base"] == summary["tasks"]["wizard_of_wikipedia"]["base"]
    header = (project.root / "metrics/summary/runs_dialog.csv").read_text().splitlines()[0]
    assert header.startswith("corpora,index,epoch,average,model,")
    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    assert "metrics/eval/base/copa.json" in json.dumps(shown)


def test_one_task_limit_reruns_that_task_alone(project):
    project.set_param("eval.tasks.copa.limit", 3)
    assert project.changed_stages() == {"evaluate@base-copa", "evaluate@gap-copa"}
    assert project.repro() == ({"evaluate@base-copa", "evaluate@gap-copa", "aggregate"}, set())
    assert project.read_json("metrics/eval/base/copa.json")["examples"] == 3


def test_dvc_exp_run_with_a_set_param(project):
    project.commit("before experiment")
    result = project.dvc("exp", "run", "-S", "gap.steps=2")
    assert "Ran experiment" in result.stdout + result.stderr
    assert project.read_json("metrics/gap/train.json")["steps"] == 2
    diff = json.loads(project.dvc("metrics", "diff", "HEAD", "--json").stdout)
    assert diff["metrics/gap/train.json"]["steps"] == {"old": 1, "new": 2, "diff": 1}
