"""Runs per hour of a Ray sweep on one node and on two, side by side in one run, and each run's overhead.

Both sweeps run the same tiny grid (4 points: a tiny random model, a few examples) on a real Ray cluster in a
private network namespace on this machine (tests/ray_cluster.py), each from a fresh project with fresh remotes,
so both compute the shared stages once and then the 4 points. Prints wall times, runs per hour, their ratio,
the per-run seconds of clone, pull, run and push, and the paper's grid projected from a per-run cost:

    .venv/bin/python benchmarks/sweep_scaling.py
    .venv/bin/python benchmarks/sweep_scaling.py --run-seconds 348   # per-run cost of a default-size run

The nodes share this machine's cores: with 2 cores and 1 CPU per node the two-node ratio is bounded by 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import save_tiny_model  # noqa: E402
from tests.dvc_project import DvcProject  # noqa: E402
from tests.ray_cluster import LoopbackCluster  # noqa: E402
from tests.test_sweep_ray import IMPORTS, TINY  # noqa: E402

PAPER_RUNS = 100 * 3 * 3  # texts x corpora x models


def one_sweep(nodes: int, work: Path) -> dict:
    model = save_tiny_model(work / "tiny-model")
    project = DvcProject.create(work / "project", TINY | {"model": {"name": str(model)}})
    project.dvc("repro", *IMPORTS)  # committed with its dvc.lock, as tests/test_sweep_ray.py's project
    project.commit("imported")
    project.run("git", "init", "-q", "--bare", str(work / "origin.git"))
    project.run("git", "remote", "add", "origin", str(work / "origin.git"))
    project.run("git", "push", "-q", "origin", "main")
    cluster = LoopbackCluster(work / "ray")
    try:
        cluster.add_node(head=True)
        for _ in range(nodes - 1):
            cluster.add_node()
        start = time.perf_counter()
        result = cluster.run(sys.executable, "-m", "gap_pipeline.sweep", "run", "--corpora", "github", "tdec",
                             "--indices", "0-1", "--git-remote", "origin", "--dvc-remote", str(work / "store"),
                             "--address", cluster.address, "--report", str(work / "report.json"),
                             cwd=project.root, env=project.env)
        wall = time.perf_counter() - start
    finally:
        cluster.stop()
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    report = json.loads((work / "report.json").read_text())
    return {"nodes": nodes, "wall": wall, "report": report}


def phase_medians(report: dict) -> dict[str, float]:
    runs = report["finished"]
    return {phase: statistics.median(run["seconds"].get(phase, 0.0) for run in runs)
            for phase in ("clone", "pull", "run", "push")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-seconds", type=float, default=None,
                        help="per-run cost to project the paper's grid with (default: the tiny run's)")
    args = parser.parse_args()
    results = []
    for nodes in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one_sweep(nodes, Path(tmp)))
    points = len(results[0]["report"]["finished"])
    print(f"tiny grid of {points} points plus the shared stages, 1 CPU per node, this machine "
          f"({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores)")
    for result in results:
        shared = result["report"]["shared"][0]["seconds"]
        print(f"  {result['nodes']} node(s): {result['wall']:.0f} s wall, {points / result['wall'] * 3600:.0f} "
              f"runs/hour (shared stages {sum(shared.values()):.0f} s of it)")
    print(f"  two nodes / one node, runs per hour: {results[0]['wall'] / results[1]['wall']:.2f}x")
    phases = phase_medians(results[0]["report"])
    overhead = phases["clone"] + phases["pull"] + phases["push"]
    print("  per run, median seconds (one node): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
          + f"; overhead (clone + pull + push) {overhead:.1f}")
    per_run = (args.run_seconds or phases["run"]) + overhead
    print(f"paper's grid ({PAPER_RUNS} runs) at {per_run:.0f} s per run including overhead:")
    for nodes in (1, 4, 16, 64):
        print(f"  {nodes:>3} node(s), one run each at a time: {PAPER_RUNS * per_run / nodes / 3600:.1f} h")


if __name__ == "__main__":
    main()
