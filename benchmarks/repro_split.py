"""Where a first `dvc repro` of the default spends its time, from one clean-clone run.

Clones the repository at HEAD into a fresh folder (no DVC cache, no outputs: what a new user has after the
install), runs `dvc repro` there with this interpreter's environment, timestamps each stage's start from DVC's
"Running stage" lines as they stream, and then splits each stage's wall time with the stages' own records:
the evaluate stages' scoring seconds (`data/predictions/**/*.run.json`), the ascent's update seconds
(`data/gap_timing.json`). Prints one row per stage and the totals by kind of work.

    .venv/bin/python benchmarks/repro_split.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTED = re.compile(r"Running stage '([^']+)'")


def clone(project: Path) -> Path:
    """A clean clone of HEAD beside the project, so that params.yaml's ../shared resolves as in the project."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
    return project


def timed_repro(project: Path) -> tuple[dict[str, float], float]:
    """Each stage's wall seconds (start to the next stage's start, or the end) and the whole run's."""
    env = os.environ | {"PYTHONUNBUFFERED": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    start = time.perf_counter()
    starts: list[tuple[str, float]] = []
    with subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:
        for line in run.stdout:
            found = STARTED.search(line)
            if found:
                starts.append((found.group(1), time.perf_counter() - start))
                print(f"{starts[-1][1]:8.1f} s  {found.group(1)}", flush=True)
    total = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"dvc repro failed ({run.returncode})")
    ends = [t for _, t in starts[1:]] + [total]
    return {name: end - begun for (name, begun), end in zip(starts, ends, strict=True)}, total


def split(project: Path, walls: dict[str, float], total: float) -> dict[str, float]:
    """Seconds by kind of work: scoring, the ascent, the rest of gap, model preparation, stage start-up and the
    rest of each stage, DVC itself."""
    kinds: dict[str, float] = defaultdict(float)
    for path in (project / "data/predictions").rglob("*.run.json"):
        kinds["scoring (evaluate stages' own seconds)"] += json.loads(path.read_text())["seconds"]
    evaluate_walls = sum(w for name, w in walls.items() if name.startswith(("evaluate@", "evaluate_reference@")))
    kinds["evaluate: start-up, model load, writing"] = evaluate_walls - kinds["scoring (evaluate stages' own seconds)"]
    ascent = json.loads((project / "data/gap_timing.json").read_text())["total_seconds"]
    kinds["gap: ascent updates"] = ascent
    kinds["gap: selection scoring, load, start-up"] = walls.get("gap", 0.0) - ascent
    kinds["model preparation"] = sum(w for name, w in walls.items() if name.startswith("prepare_"))
    kinds["imports, check, sampling, trajectory (off), aggregate"] = sum(
        w for name, w in walls.items()
        if not name.startswith(("evaluate", "prepare_")) and name != "gap")
    kinds["DVC between stages (lock, hashing, cache)"] = total - sum(walls.values())
    return dict(kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    # A sibling of the project (../shared must resolve the same), left in place for a look at its outputs.
    project = clone(Path(tempfile.mkdtemp(prefix="repro-split-", dir=ROOT.parent)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True,
                            check=True).stdout.strip()
    print(f"clean clone of {commit} in ../{project.name} (a sibling of the project); {os.cpu_count()} CPUs")
    walls, total = timed_repro(project)
    print(f"\ndvc repro: {total:.0f} s ({total / 60:.1f} min), {len(walls)} stages\n")
    print(f"{'stage':48s} {'wall s':>8s}")
    for name, wall in sorted(walls.items(), key=lambda item: -item[1]):
        print(f"{name:48s} {wall:8.1f}")
    print(f"\n{'kind of work':56s} {'s':>7s} {'share':>6s}")
    for kind, seconds in split(project, walls, total).items():
        print(f"{kind:56s} {seconds:7.1f} {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
