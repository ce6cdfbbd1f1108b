"""Sweeps as Ray tasks on a real two-node cluster: each point once on the remotes, a killed node survived, a bad
point reported alone, a rerun that runs nothing. `pytest -m ray` selects these; they run in the default suite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SHARED, save_tiny_model
from tests.dvc_project import DvcProject
from tests.ray_cluster import LoopbackCluster

pytestmark = [pytest.mark.ray, pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None,
                                                  reason="needs util-linux's unshare and nsenter")]

# A tiny random model, one task and a few examples: the point is the orchestration, not the scores (each task
# more is one more evaluate stage in the shared task and in every point).
TINY = {
    "corpora": {name: {"n": 4} for name in ("github", "pile_cc", "tdec")},
    "gap": {"steps": 1, "max_length": 32, "select": {"examples": 2, "tasks": ["copa"], "criterion": "classification"}},
    "reference": {"models": []},
    "eval": {"batch_size": 4, "tasks": {"copa": {"split": "validation", "limit": 4}}},
}
IMPORTS = ["import_benchmarks", "import_corpus@github", "import_corpus@pile_cc", "import_corpus@tdec"]
SHARED_WORK = {"prepare_model", "sample_corpus@github", "sample_corpus@tdec", "sample_corpus@pile_cc",
               "evaluate@base-copa", "import_benchmarks"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LoopbackCluster(tmp_path_factory.mktemp("ray"))
    try:
        cluster.add_node(head=True)
        cluster.add_node()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def sweep_project(tmp_path_factory, small_benchmarks) -> DvcProject:
    """The project at a tiny size, its commit on a bare git remote, an empty folder as the DVC remote."""
    root = tmp_path_factory.mktemp("sweep")
    model = save_tiny_model(root / "tiny-model")
    overrides = TINY | {"model": {"name": str(model)}, "data": {"benchmarks": str(small_benchmarks)}}
    project = DvcProject.create(root / "project", overrides)
    # As a project is committed before a sweep: with its dvc.lock, whose import stages (persistent outputs,
    # which DVC's run-cache does not restore) each point then checks out from the DVC remote instead of importing.
    project.dvc("repro", *IMPORTS)
    project.commit("imported")
    project.run("git", "init", "-q", "--bare", str(root / "origin.git"))
    project.run("git", "remote", "add", "origin", str(root / "origin.git"))
    project.run("git", "push", "-q", "origin", "main")
    return project


def sweep_command(project: DvcProject, cluster: LoopbackCluster, *grid: str, report: str) -> list[str]:
    root = project.root.parent
    return [sys.executable, "-m", "gap_pipeline.sweep", "run", *grid, "--git-remote", "origin",
            "--dvc-remote", str(root / "dvc-store"), "--address", cluster.address, "--workdir", str(root / "work"),
            "--report", str(root / report)]


def sweep(project, cluster, *grid: str, report: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = cluster.run(*sweep_command(project, cluster, *grid, report=report), cwd=project.root, env=project.env,
                         timeout=1200)
    written = project.root.parent / report
    assert written.exists(), f"no report ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result, json.loads(written.read_text())


def remote_experiments(project: DvcProject) -> list[str]:
    return project.dvc("exp", "list", "origin", "--name-only").stdout.split()


def attempts(project: DvcProject) -> list[tuple[str, str]]:
    log = project.root.parent / "work" / "attempts.log"
    return [tuple(line.split("\t")[:2]) for line in log.read_text().splitlines()]


def test_a_grid_runs_each_point_once_across_both_nodes(sweep_project, cluster):
    # Two points, one per node of one CPU each: Ray runs them side by side.
    result, report = sweep(sweep_project, cluster, "--corpora", "github", "tdec", "--indices", "0",
                           report="grid.json")
    assert result.returncode == 0, result.stderr[-3000:]
    names = ["gap-github-0", "gap-tdec-0"]
    assert sorted(remote_experiments(sweep_project)) == names
    assert sorted(run["name"] for run in report["finished"]) == names and report["failed"] == {}
    # The shared stages ran once, in the first task; no grid point ran them again.
    (shared,) = report["shared"]
    assert SHARED_WORK | {"check_params"} <= set(shared["stages"])
    assert not {"gap", "aggregate", "evaluate@gap-copa"} & set(shared["stages"])
    assert SHARED_WORK <= set(shared["ran"])
    for run in report["finished"]:
        assert "gap" in run["ran"] and not SHARED_WORK & set(run["ran"]), run
    assert len({run["node"] for run in report["finished"]}) == 2  # both nodes took points
    # `collect` reads what the cluster pushed, as it reads local experiments.
    sweep_project.dvc("exp", "pull", "origin", *names)
    sweep_project.run(sys.executable, "-m", "gap_pipeline.sweep", "collect", "--out", "metrics/sweep",
                      "--paper", str(SHARED / "paper"))
    rows = [r for r in (sweep_project.root / "metrics/sweep/runs_classification.csv").read_text().splitlines()[1:]
            if r.startswith(("Git.", "TDEC"))]
    assert len(rows) == len(names)


def test_a_rerun_runs_nothing_and_a_bad_point_fails_alone(sweep_project, cluster):
    before = attempts(sweep_project)
    result, report = sweep(sweep_project, cluster, "--corpora", "github", "--indices", "0,9", report="again.json")
    assert result.returncode == 1
    assert report["skipped"] == ["gap-github-0"] and report["finished"] == []
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("failed ")]
    assert line.startswith("failed gap-github-9: error: ") and "gap.index" in line
    new = attempts(sweep_project)[len(before):]
    assert [name for name, _ in new].count("gap-github-9") == 1  # refused input is not retried
    assert "gap-github-9" not in remote_experiments(sweep_project)


def test_a_node_killed_mid_point_is_retried_on_the_other(sweep_project, cluster):
    worker = cluster.nodes[1]
    before = len(attempts(sweep_project))
    before_on_remote = len(remote_experiments(sweep_project))
    # Two points, one per node: the second node's is killed and must finish on the first.
    command = sweep_command(sweep_project, cluster, "--corpora", "github", "tdec", "--indices", "1",
                            report="killed.json")
    driver = cluster.popen(*command, cwd=sweep_project.root, env=sweep_project.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    # Wait until the second node is inside a point (its `dvc exp run` started), then kill all of it.
    deadline = time.monotonic() + 600
    while not any("exp run" in _cmdline(pid) for pid in cluster.descendants(worker.pid)):
        assert driver.poll() is None and time.monotonic() < deadline, "the second node never started a point"
        time.sleep(0.5)
    cluster.kill_node(worker)
    out, err = driver.communicate(timeout=1200)
    assert driver.returncode == 0, err[-3000:]
    report = json.loads((sweep_project.root.parent / "killed.json").read_text())
    names = ["gap-github-1", "gap-tdec-1"]
    assert sorted(run["name"] for run in report["finished"]) == names
    on_remote = remote_experiments(sweep_project)
    assert all(on_remote.count(name) == 1 for name in names) and len(on_remote) == before_on_remote + len(names)
    # The killed point ran twice, on two nodes; every point on the remote has all its outputs there.
    tried = attempts(sweep_project)[before:]
    twice = [name for name in names if [n for n, _ in tried].count(name) == 2]
    assert len(twice) == 1 and len({node for n, node in tried if n == twice[0]}) == 2
    fresh = DvcProject.clone(sweep_project.root.parent / "origin.git", sweep_project.root.parent / "check")
    fresh.dvc("remote", "add", "--local", "-d", "store", str(sweep_project.root.parent / "dvc-store"))
    fresh.dvc("exp", "pull", "origin", *names)  # fails on an experiment whose cache is not all on the remote
    # Running the command again after the crash runs nothing.
    cluster.add_node()
    result, again = sweep(sweep_project, cluster, "--corpora", "github", "tdec", "--indices", "1",
                          report="resumed.json")
    assert result.returncode == 0 and sorted(again["skipped"]) == names and again["finished"] == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
