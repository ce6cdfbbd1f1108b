"""End to end: real `dvc repro` of the whole pipeline on the paper's corpora and benchmarks, at a tiny size.

The model is a tiny random Llama given as a local model directory (`model.name` a path, as a user's own model
is): what these tests check is what DVC reruns, restores and shares, which no real model's scores change. The
real packaged models are prepared and scored against lm-eval's CLI in tests/test_evaluation.py and
tests/test_models.py.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gap_pipeline.gap.ascent import encode_text, text_loss
from gap_pipeline.models import load_model
from gap_pipeline.sweep import experiment_revs, file_data
from tests.conftest import SHARED, save_wide_tiny_model
from tests.dvc_project import DvcProject

pytestmark = pytest.mark.slow

TINY = {
    "corpora": {name: {"n": 3} for name in ("github", "pile_cc", "tdec")},
    # Best-step selection on a real slice: the last 2 examples of copa and Wizard of Wikipedia.
    "gap": {"steps": 1, "max_length": 32, "select": {"examples": 2, "tasks": ["copa", "wizard_of_wikipedia"]}},
    "reference": {"models": []},  # Gemma's preparation alone would double this file's run time
    "eval": {
        "batch_size": 4,
        # One multiple-choice and one dialogue task, a few examples each.
        "tasks": {"copa": {"split": "validation", "limit": 4},
                  "wizard_of_wikipedia": {"split": "validation", "limit": 2}},
    },
}
EVALUATIONS = {f"evaluate@{model}-{task}" for model in ("base", "gap") for task in ("copa", "wizard_of_wikipedia")}
GAP_EVALUATIONS = {stage for stage in EVALUATIONS if "@gap-" in stage}
IMPORTS = {"import_benchmarks", "import_corpus@github", "import_corpus@pile_cc", "import_corpus@tdec"}
ALL_STAGES = {
    *IMPORTS, "check_params", "prepare_model", "sample_corpus@github", "sample_corpus@pile_cc",
    "sample_corpus@tdec", "gap", "trajectory",
    *EVALUATIONS, "aggregate",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory, small_benchmarks) -> DvcProject:
    root = tmp_path_factory.mktemp("gap")
    model = save_wide_tiny_model(root / "tiny-model")
    overrides = TINY | {"model": {"name": str(model)}, "data": {"benchmarks": str(small_benchmarks)}}
    project = DvcProject.create(root / "project", overrides)
    ran, _ = project.repro()
    assert ran == ALL_STAGES
    project.commit("first repro")
    return project


def test_repro_leaves_a_post_trained_model_and_its_metrics(project):
    train = project.read_json("metrics/gap/train.json")
    assert train["steps_run"] == 1 and train["steps"] in (0, 1) and 2 <= train["tokens"] <= 32
    rows = (project.root / "metrics/gap/steps.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "loss", "seconds", "tokens_per_second"] and len(rows) == 3
    assert float(rows[2].split("\t")[1]) > float(rows[1].split("\t")[1])  # the ascent climbed
    curve = (project.root / "metrics/gap/selection.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:4] == ["step", "criterion", "classification", "dialogue"] and len(curve) == 3
    assert train["diverged"] is False
    run = project.read_json("models/gap_run.json")
    sampled = (project.root / "data/corpora/github.jsonl").read_text().splitlines()
    assert str(run["text"]["doc_id"]) in sampled[0]
    assert run["base_model"]["parameters"] == project.read_json("models/base/model_info.json")["parameters"]
    weights = [project.root / f"models/{model}/model.safetensors" for model in ("base", "gap")]
    assert weights[0].stat().st_size == weights[1].stat().st_size > 0  # the same architecture, post-trained
    assert project.changed_stages() == set()


def test_a_corpus_seed_reruns_only_that_corpus(project):
    # check_params reads every key: it reruns on any change (in a fraction of a second), and its unchanged
    # output reruns nothing after it.
    project.set_param("corpora.pile_cc.seed", 1)
    assert project.changed_stages() == {"check_params", "sample_corpus@pile_cc"}
    assert project.repro() == ({"check_params", "sample_corpus@pile_cc"}, set())
    # Back to the old seed: the run-cache restores the old sample instead of recomputing it.
    project.set_param("corpora.pile_cc.seed", 0)
    assert project.repro() == ({"check_params"}, {"sample_corpus@pile_cc"})
    assert project.changed_stages() == set()


def test_evaluations_rerun_only_when_the_kept_weights_change(project):
    first = project.read_json("metrics/gap/train.json")
    defaults = project.params()["gap"]
    # A ceiling the loss never reaches: the same ascent and the same kept weights, only a new run record.
    project.set_param("gap.loss_ceiling", defaults["loss_ceiling"] - 1)
    # (The trajectory stage reads every gap key too; off, it writes the same one line, so nothing follows it.)
    assert project.changed_stages() == {"check_params", "gap", "trajectory"}
    assert project.repro() == ({"check_params", "gap", "trajectory"}, set())
    assert project.read_json("models/gap_run.json")["gap"]["loss_ceiling"] == defaults["loss_ceiling"] - 1
    # The ceiling back (the last repro below shows the run-cache restoring the default run) and one more step:
    # the scores of GAP rerun if and only if the selection kept another step (new weights).
    project.set_param("gap.loss_ceiling", defaults["loss_ceiling"])
    project.set_param("gap.steps", 2)
    ran, _ = project.repro()
    train = project.read_json("metrics/gap/train.json")
    assert train["steps_run"] == 2
    rescored = GAP_EVALUATIONS if train["steps"] != first["steps"] else set()
    assert ran == {"check_params", "gap", "trajectory", "aggregate"} | rescored
    # Another learning rate, and the last step kept whatever the slice says: weights never scored before.
    project.set_param("gap.lr", defaults["lr"] * 2)
    project.set_param("gap.select.criterion", "last")
    assert project.repro() == ({"check_params", "gap", "trajectory", *GAP_EVALUATIONS, "aggregate"}, set())
    # Back to the defaults: everything downstream of gap comes back from the run-cache, never the baseline reruns.
    for key in ("steps", "lr"):
        project.set_param(f"gap.{key}", defaults[key])
    project.set_param("gap.select.criterion", defaults["select"]["criterion"])
    assert project.repro() == ({"check_params"}, {"gap", "trajectory", *GAP_EVALUATIONS, "aggregate"})
    assert project.read_json("metrics/gap/train.json") == first


def test_a_trajectory_reports_every_step_both_protocols_and_the_selection_bias(project):
    """gap.trajectory reruns neither the ascent's selection nor an evaluation: only its stage and the summary."""
    project.set_param("gap.trajectory", True)
    assert project.changed_stages() == {"check_params", "trajectory"}
    assert project.repro() == ({"check_params", "trajectory", "aggregate"}, set())
    summary, train = project.read_json("metrics/summary/summary.json"), project.read_json("metrics/gap/train.json")
    assert summary["run"]["model"] == project.params()["model"]["name"]
    paper, disjoint = summary["protocols"]["paper"], summary["protocols"]["disjoint"]
    assert disjoint["step"] == train["steps"] and 0 <= paper["step"] <= train["steps_run"]
    for family in ("classification", "dialogue"):
        trajectory = summary["trajectory"][family]
        assert [entry["step"] for entry in trajectory] == list(range(train["steps_run"] + 1))
        assert trajectory[0]["delta"] == 0.0 and trajectory[0]["delta_ci95"] == [0.0, 0.0]
        # The kept step's gain on the reported examples is the evaluate stages' gain, scored in another process.
        assert disjoint[family]["delta"] == pytest.approx(summary["averages"][family]["delta"], abs=1e-9)
        kept = trajectory[train["steps"]]
        assert disjoint[family] == {"delta": kept["delta"], "delta_ci95": kept["delta_ci95"]}
        bias = summary["selection_bias"][family]
        assert bias["delta"] == pytest.approx(paper[family]["delta"] - disjoint[family]["delta"], abs=1e-9)
        assert len(bias["delta_ci95"]) == 2
    project.set_param("gap.trajectory", False)
    assert project.repro() == ({"check_params"}, {"trajectory", "aggregate"})
    assert "trajectory" not in project.read_json("metrics/summary/summary.json")


def test_evaluation_leaves_every_task_score_and_the_summary(project):
    for stage in EVALUATIONS:
        model, task = stage.removeprefix("evaluate@").split("-", 1)
        record = project.read_json(f"metrics/eval/{model}/{task}.json")
        metric = "f1" if task == "wizard_of_wikipedia" else "acc"
        assert 0.0 <= record["metrics"][metric] <= 1.0
        assert record["examples"] == TINY["eval"]["tasks"][task]["limit"]
        run_info = project.read_json(f"data/predictions/{model}/{task}.run.json")
        assert run_info["split"] == "validation" and run_info["versions"]["lm-eval"] and run_info["seconds"] > 0
        assert run_info["model_class"] == "fast"  # eval.model_class: auto, resolved on this CPU
        lines = (project.root / f"data/predictions/{model}/{task}.jsonl").read_text().splitlines()
        assert len(lines) == record["examples"]
    summary = project.read_json("metrics/summary/summary.json")
    copa = summary["tasks"]["copa"]
    assert copa["delta"] == pytest.approx(copa["gap"] - copa["base"])
    assert summary["averages"]["dialogue"]["base"] == summary["tasks"]["wizard_of_wikipedia"]["base"]
    header = (project.root / "metrics/summary/runs_dialogue.csv").read_text().splitlines()[0]
    assert header.startswith("corpora,index,epoch,average,model,")
    # Paired statistics from the per-example predictions: an interval around the delta, the examples that changed.
    low, high = copa["delta_ci95"]
    assert copa["examples"] == 4 and low <= copa["delta"] <= high and 0 <= copa["changed"] <= 4
    assert summary["averages"]["dialogue"]["mde80"] >= 0 and len(summary["averages"]["dialogue"]["delta_ci95"]) == 2
    # Results only: every metric DVC shows is a number (or a flag), none of them a path, a version or a time.
    shown = json.loads(project.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert set(files) == {"metrics/summary/summary.json", "metrics/gap/train.json"}
    values = json.dumps([data["data"] for data in files.values()])
    # run.model echoes model.name, here the tiny model's folder: the user's own value, not one the pipeline adds.
    values = values.replace(json.dumps(project.params()["model"]["name"]), '"tiny"')
    assert not any(word in values for word in ("seconds", "version", "/", "float32"))


def test_one_task_limit_reruns_that_task_alone(project):
    project.set_param("eval.tasks.copa.limit", 3)
    assert project.changed_stages() == {"check_params", "trajectory", "evaluate@base-copa", "evaluate@gap-copa"}
    assert project.repro() == ({"check_params", "trajectory", "evaluate@base-copa", "evaluate@gap-copa",
                                "aggregate"}, set())
    assert project.read_json("metrics/eval/base/copa.json")["examples"] == 3


def test_the_selection_split_reruns_gap_and_a_reporting_split_its_task(project):
    project.set_param("gap.select.split", "test")
    assert project.changed_stages() == {"check_params", "gap", "trajectory"}
    project.set_param("gap.select.split", "validation")
    project.set_param("eval.tasks.copa.split", "test")
    assert project.changed_stages() == {"check_params", "trajectory", "evaluate@base-copa", "evaluate@gap-copa"}
    project.set_param("eval.tasks.copa.split", "validation")
    assert project.changed_stages() == set()


def test_a_refused_param_stops_the_run_before_any_output_is_touched(project):
    project.set_param("gap.steps", -1)
    before = json.loads(project.dvc("status", "--json").stdout)
    refused = project.dvc("repro", check=False)
    assert refused.returncode != 0 and "gap.steps = -1" in refused.stdout + refused.stderr
    assert "Running stage 'gap'" not in refused.stdout
    assert json.loads(project.dvc("status", "--json").stdout) == before
    assert (project.root / "metrics/gap/train.json").exists() and (project.root / "models/gap").is_dir()
    project.set_param("gap.steps", 1)
    assert project.changed_stages() == set()


@pytest.mark.parametrize(("key", "value", "message"), [
    ("runtime.device", "cuda", "runtime.device = 'cuda' but no CUDA device is visible"),
    ("gap.index", TINY["corpora"]["github"]["n"], "gap.index = 3 but the sample of 'github'"),
])
def test_what_the_gap_stage_would_refuse_check_params_refuses_first(project, key, value, message):
    """Refused by the gap stage itself, these left it without outputs: DVC removes them before a stage runs."""
    if key == "runtime.device" and torch.cuda.is_available():
        pytest.skip("CUDA is visible: runtime.device cuda is valid here")
    tracked = sorted(p for p in (project.root / "metrics").rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in tracked}
    good = project.params()
    project.set_param(key, value)
    status = json.loads(project.dvc("status", "--json").stdout)
    refused = project.dvc("repro", check=False)
    assert refused.returncode != 0 and f"error: {message}" in refused.stderr + refused.stdout
    assert "Running stage 'gap'" not in refused.stdout
    assert json.loads(project.dvc("status", "--json").stdout) == status
    assert {p: p.read_bytes() for p in tracked} == before and (project.root / "models/gap").is_dir()
    project.write_params(good)
    assert project.changed_stages() == set()


@pytest.mark.parametrize(("module", "stages"), [
    ("core/runtime.py", {*IMPORTS, "check_params", "prepare_model", "sample_corpus@github", "sample_corpus@pile_cc",
                         "sample_corpus@tdec", "gap", "trajectory", *EVALUATIONS, "aggregate"}),
    ("task_data.py", {"import_benchmarks", "check_params"}),
    ("corpora.py", {"import_corpus@github", "import_corpus@pile_cc", "import_corpus@tdec", "sample_corpus@github",
                    "sample_corpus@pile_cc", "sample_corpus@tdec"}),
    ("models.py", {"prepare_model", "gap", "trajectory", *EVALUATIONS}),
    ("scoring/batching.py", {"gap", "trajectory", *EVALUATIONS}),
    ("gap/trajectory.py", {"gap", "trajectory"}),
    # The import renders records through the tasks' configs; the scorers depend on the whole scoring folder. The
    # import's unchanged output reruns nothing after it (check_params).
    ("scoring/records.py", {"import_benchmarks", "gap", "trajectory", *EVALUATIONS}),
    ("reporting/run_summary.py", {"aggregate"}),
])
def test_an_edit_to_a_module_reruns_the_stages_that_import_it(project, module, stages):
    source = project.root / "src/gap_pipeline" / module
    original = source.read_text()
    source.write_text(original + "\n\ndef added_by_a_test() -> None:\n    pass\n")
    try:
        assert project.changed_stages() == stages
    finally:
        source.write_text(original)
    assert project.changed_stages() == set()


def test_a_malformed_corpus_stops_its_import_and_leaves_dvc_status_as_it_was(project):
    broken = project.root.parent / "broken.jsonl"
    broken.write_text('{"doc_id": 1, "text": "fine"}\n{"doc_id": 2, "text": \n')
    good = project.params()["corpora"]["github"]["source"]
    project.set_param("corpora.github.source", str(broken))
    before = json.loads(project.dvc("status", "--json").stdout)
    assert "import_corpus@github" in before
    refused = project.dvc("repro", check=False)
    assert refused.returncode != 0 and f"{broken}:2: not a JSON record" in refused.stdout + refused.stderr
    assert json.loads(project.dvc("status", "--json").stdout) == before
    project.set_param("corpora.github.source", good)
    assert project.changed_stages() == set()


def test_an_identical_forced_rerun_leaves_every_metrics_file_byte_identical(project):
    tracked = sorted(p for p in (project.root / "metrics").rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in tracked}
    # One stage of each script that writes metrics (a multiple-choice evaluation's bytes are compared in
    # test_faults.py, two runs of the stage script side by side).
    for stage in ("gap", "evaluate@gap-wizard_of_wikipedia", "aggregate"):
        project.dvc("repro", "-f", "-s", stage)
    changed = [str(p.relative_to(project.root)) for p in tracked if p.read_bytes() != before[p]]
    assert changed == ["metrics/gap/steps.tsv"]  # a plots table: its seconds column is the one timing kept
    assert project.changed_stages() == set()


def test_dvc_exp_run_with_a_set_param(project):
    project.commit("before experiment")
    result = project.dvc("exp", "run", "-S", "gap.steps=2")
    assert "Ran experiment" in result.stdout + result.stderr
    assert project.read_json("metrics/gap/train.json")["steps_run"] == 2
    diff = json.loads(project.dvc("metrics", "diff", "HEAD", "--json").stdout)
    assert diff["metrics/gap/train.json"]["steps_run"] == {"old": 1, "new": 2, "diff": 1}


def _tmp_dirs(project) -> list:
    return sorted((project.root / "models").glob(".gap.tmp-*"))


def _kill_gap_while_it_writes(project) -> bool:
    """Run `dvc repro gap` and kill DVC and the stage outright once the stage's temporary output folder exists
    (from its creation to its rename the stage writes the weights, the tokenizer and the model record). False if
    the run ended before the kill could land."""
    repro = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "gap"], cwd=project.root, env=project.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 900  # loading, selection on step 0, the step: minutes on a busy machine
    while not _tmp_dirs(project):
        if repro.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the gap stage never started writing"
        time.sleep(0.001)
    os.killpg(repro.pid, signal.SIGKILL)
    repro.wait()
    return True


def test_a_stage_killed_mid_write_leaves_nothing_and_reruns_cleanly(project):
    # The window is the write of a ~100 MB weights file: a try whose stage got through it before the poll saw it
    # shows nothing either way, so another seed (a run the cache has never seen) tries again.
    for seed in (7, 8, 9):
        project.set_param("gap.seed", seed)
        if _kill_gap_while_it_writes(project):
            break
    else:
        pytest.fail("the gap stage wrote its output three times before a kill could land")
    assert _tmp_dirs(project)  # the half-written folder, beside the output
    assert not (project.root / "models/gap/model.safetensors").exists()  # no half model in place of the output
    assert "gap" in project.changed_stages()
    ran, _ = project.repro()
    assert "gap" in ran and _tmp_dirs(project) == []
    assert project.read_json("models/gap_run.json")["gap"]["seed"] == seed
    assert project.changed_stages() == set()


def _experiments(project) -> dict[str, dict]:
    """`dvc exp show --json` as {experiment name: {"params": params.yaml, "train": metrics/gap/train.json}}."""
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    return {rev["name"]: {"params": file_data(rev["data"], "params", "params.yaml"),
                          "train": file_data(rev["data"], "metrics", "metrics/gap/train.json")}
            for rev in experiment_revs(shown)}


def _dvc_store(project) -> str:
    return str(project.root.parent / "dvc-store")


def test_a_sweep_is_not_queued_where_the_imports_are_not_in_the_cache(project, tmp_path):
    """A fresh clone has an empty DVC cache, from which queued copies would have to restore the imports: nothing is
    queued, and the one-line error names the command that fixes it."""
    clone = DvcProject.clone(project.root, tmp_path / "clone")
    refused = clone.run(sys.executable, "-m", "gap_pipeline.sweep", "queue", "--corpora", "github", "--indices", "1",
                        check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: import_benchmarks, import_corpus@github")
    assert "run `dvc repro import_benchmarks import_corpus@github" in refused.stderr
    assert "gap-github-1" not in clone.dvc("queue", "status").stdout


def test_a_queued_sweep_runs_two_at_a_time_and_is_collected(project):
    # A DVC remote configured before queuing: each experiment's commit carries it, so `exp push` can use it.
    project.dvc("remote", "add", "-d", "store", _dvc_store(project))
    project.commit("before the queue")
    # Two experiments for two workers: a new text, and a run the workspace has made before (gap.seed 0, before the
    # kill test moved it), which the queue restores from the workspace's run-cache.
    project.run(sys.executable, "-m", "gap_pipeline.sweep", "queue", "--corpora", "github", "--indices", "1")
    project.dvc("exp", "run", "--queue", "--name", "seed-0-again", "-S", "gap.seed=0")
    # The workers outlive `queue start` and would hold a captured stdout open: send their output elsewhere.
    start = subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", "2"], cwd=project.root,
                           env=project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    assert start.returncode == 0
    deadline = time.monotonic() + 900
    while True:
        # `queue status` can read a worker's info file while it is being written and fail with a JSON error
        # (a DVC race, treeverse/dvc#8014): such a poll says nothing, so poll again.
        polled = project.dvc("queue", "status", check=False)
        status = polled.stdout + polled.stderr
        if polled.returncode == 0 and "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(5)
    assert status.count("Success") == 2, status
    experiments = _experiments(project)
    # Each experiment post-trained its own text: its initial loss is the base model's loss on that text.
    model, tokenizer = load_model(project.root / "models/base", torch.device("cpu"), torch.float32)
    texts = (project.root / "data/corpora/github.jsonl").read_text().splitlines()
    max_length = project.params()["gap"]["max_length"]
    exp = experiments["gap-github-1"]
    assert exp["params"]["gap"]["index"] == 1
    ids = encode_text(tokenizer, json.loads(texts[1])["text"], max_length)
    assert exp["train"]["initial_loss"] == pytest.approx(text_loss(model, ids), abs=1e-4)
    assert exp["train"]["initial_loss"] != project.read_json("metrics/gap/train.json")["initial_loss"]  # text 0's
    # Preparing the model, sampling and the baseline scores were shared, not recomputed.
    log = project.dvc("queue", "logs", "gap-github-1").stdout
    assert "Running stage 'gap'" in log
    assert "Running stage 'prepare_model'" not in log and "Running stage 'evaluate@base-copa'" not in log
    log = project.dvc("queue", "logs", "seed-0-again").stdout
    assert "Stage 'gap' is cached - skipping run" in log and "Running stage 'gap'" not in log
    assert not any(f"Running stage '{stage}'" in log for stage in IMPORTS)
    # The report reads the experiments back: one row per finished run, the figure, the paper comparison.
    report = project.run(sys.executable, "-m", "gap_pipeline.sweep", "collect", "--out", "metrics/sweep",
                         "--paper", str(SHARED / "paper")).stdout
    assert "paper OPT-350M: above" in report
    rows = (project.root / "metrics/sweep/runs_classification.csv").read_text().splitlines()
    indices = [row.split(",")[1] for row in rows if row.startswith("Git.,")]
    sampled = [json.loads(line)["source_row"] for line in texts]
    assert {str(sampled[0]), str(sampled[1])} <= set(indices)
    assert (project.root / "metrics/sweep/figure1.png").stat().st_size > 10_000
    # Exported whole from the experiment's commit: `dvc exp show` would have dropped every list (the intervals).
    project.run(sys.executable, "-m", "gap_pipeline.sweep", "export", "--out", "metrics/study")
    exported = json.loads((project.root / "metrics/study/gap-github-1.json").read_text())
    committed = project.run("git", "show", f"{exported['rev']}:metrics/summary/summary.json").stdout
    assert exported["summary"] == json.loads(committed)
    assert len(exported["summary"]["tasks"]["copa"]["delta_ci95"]) == 2


def test_a_sweep_is_shared_through_a_git_remote_and_a_dvc_remote(project, tmp_path):
    """Machine A pushes an experiment and the run-cache; machine B, a fresh clone, gets both without rerunning."""
    origin = tmp_path / "origin.git"
    project.run("git", "init", "-q", "--bare", str(origin))
    project.run("git", "remote", "add", "origin", str(origin))
    project.run("git", "push", "-q", "origin", "main")
    project.dvc("exp", "push", "origin", "gap-github-1")
    project.dvc("push", "--run-cache")

    clone = DvcProject.clone(origin, tmp_path / "machine-b")
    ran, _ = clone.repro("--pull")
    assert ran == set()  # every output pulled, none recomputed
    assert clone.read_json("metrics/gap/train.json") == project.read_json("metrics/gap/train.json")
    clone.dvc("exp", "pull", "origin", "gap-github-1")
    clone.dvc("exp", "apply", "gap-github-1")
    ran, _ = clone.repro("--pull")
    assert ran == set()
    assert clone.read_json("models/gap_run.json")["gap"]["index"] == 1
