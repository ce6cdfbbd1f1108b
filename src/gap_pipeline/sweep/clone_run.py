"""One piece of a distributed sweep, run in a clone of its own: the shared stages, or one grid point.

Each runs anywhere the project's environment is installed: it clones the git remote at the sweep's commit, takes
what others computed from the DVC remote (run-cache entries, then the outputs they name), runs, and pushes. The
order makes a crash harmless: cached outputs and run-cache entries go up first, the experiment's git ref last,
so a ref on the git remote always has everything it names; a rerun finds the ref and skips the point.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SWEEP_REMOTE = "sweep"  # the DVC remote each clone adds in its local config when --dvc-remote is given
GAP_STAGE = "gap"


@dataclass(frozen=True)
class Remotes:
    """Where a sweep's results go, and from which commit its runs start."""

    git: str
    rev: str
    dvc: str | None = None  # None: the project's default DVC remote
    workdir: str | None = None  # where clones go on each node; None: the system's temp folder


class PointRefused(Exception):
    """A run that stopped on bad input (a stage exited 2): rerunning cannot help, so Ray must not retry it."""

    def __init__(self, name: str, line: str):
        super().__init__(f"{name}: {line}")
        self.name, self.line = name, line

    def __reduce__(self):  # Ray ships exceptions between processes
        return PointRefused, (self.name, self.line)


class PointFailed(RuntimeError):
    """A run that failed for another reason (a crash, a full disk, a remote out of reach)."""


@dataclass
class CloneRun:
    """A clone of the sweep's commit, and the seconds spent in each phase."""

    root: Path
    remotes: Remotes
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        # The stages run `python`: this interpreter, whose environment holds the project's dependencies.
        return os.environ | {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "gap-sweep"),
            "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "gap-sweep@localhost"),
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "gap-sweep"),
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "gap-sweep@localhost"),
            "DVC_NO_ANALYTICS": "1",
        }

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=cwd or self.root, env=self.env, capture_output=True, text=True)

    def check(self, *args: str, cwd: Path | None = None) -> str:
        result = self.run(*args, cwd=cwd)
        if result.returncode != 0:
            raise PointFailed(f"{' '.join(args)} failed ({result.returncode}): {last_line(result.stderr)}")
        return result.stdout

    def dvc(self, *args: str) -> str:
        return self.check(sys.executable, "-m", "dvc", *args)

    @contextmanager
    def timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


def last_line(text: str) -> str:
    """The line that says what went wrong: a stage's own ``error:`` line, else the last one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("error:")]
    return (ours or lines or ["(no output)"])[-1]


@contextmanager
def clone(remotes: Remotes):
    """A fresh clone of ``remotes.git`` at ``remotes.rev``, removed afterwards (also when the run fails)."""
    if remotes.workdir:
        Path(remotes.workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="gap-sweep-", dir=remotes.workdir))
    try:
        run = CloneRun(folder / "repo", remotes)
        with run.timed("clone"):
            run.check("git", "clone", "-q", "--no-checkout", remotes.git, str(run.root), cwd=folder)
            if run.run("git", "checkout", "-q", remotes.rev).returncode != 0:
                raise PointFailed(f"commit {remotes.rev} is not on the git remote {remotes.git}: git push it first")
            if remotes.dvc:
                run.dvc("remote", "add", "--local", "--default", "--force", SWEEP_REMOTE, remotes.dvc)
        yield run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def experiments_on_remote(run: CloneRun) -> set[str]:
    """Names of the experiments of this commit already on the git remote."""
    return set(run.dvc("exp", "list", run.remotes.git, "--name-only").split())


def pull_run_cache(run: CloneRun) -> None:
    """The run-cache entries on the DVC remote; ``--pull`` then fetches only the outputs a stage restores."""
    from dvc.repo import Repo

    with run.timed("pull"), Repo(str(run.root)) as repo:
        repo.stage_cache.pull(None)


def apply_settings(root: Path, settings: tuple[str, ...]) -> None:
    """Write ``-S key=value`` pairs into params.yaml with DVC's own writer, the one `dvc exp run -S` uses."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(root / "params.yaml", list(settings))


def shared_stages(root: Path) -> list[str]:
    """Every stage that no grid point changes: all but ``gap`` and the stages downstream of it."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
        gap = next(stage for stage in graph if stage.name == GAP_STAGE)
        downstream = nx.ancestors(graph, gap) | {gap}
        return sorted(stage.name for stage in graph if stage not in downstream)  # dvc.yaml names


def failure(name: str, result: subprocess.CompletedProcess) -> Exception:
    """A stage that exited 2 refused its input: one line, not retried. Anything else is a failure."""
    line = last_line(result.stderr + "\n" + result.stdout)
    if re.search(r"exited with 2\b", result.stderr) or line.startswith("error:"):
        return PointRefused(name, line)
    return PointFailed(f"{name}: {line}")


def run_shared(remotes: Remotes, settings: tuple[str, ...]) -> dict[str, Any]:
    """Compute (or restore) the stages every grid point shares and push them with their run-cache entries."""
    log_attempt(remotes, "shared stages")
    with clone(remotes) as run:
        pull_run_cache(run)
        apply_settings(run.root, settings)
        stages = shared_stages(run.root)
        with run.timed("run"):
            result = run.run(sys.executable, "-m", "dvc", "repro", "--pull", *stages)
        if result.returncode != 0:
            raise failure("shared stages", result)
        with run.timed("push"):
            run.dvc("push", "--run-cache")
        return {"name": "shared stages", "stages": stages, "seconds": run.seconds, "node": node_id(),
                **stages_run(result.stdout)}


def log_attempt(remotes: Remotes, name: str) -> None:
    """One line per attempt in ``<workdir>/attempts.log``: which point, on which node, in which process."""
    if remotes.workdir:
        Path(remotes.workdir).mkdir(parents=True, exist_ok=True)
        with open(Path(remotes.workdir) / "attempts.log", "a", encoding="utf-8") as log:
            log.write(f"{name}\t{node_id()}\t{os.getpid()}\n")


def stages_run(output: str) -> dict[str, list[str]]:
    """The stages `dvc repro`/`dvc exp run` ran, and those it restored from the run-cache, from its output."""
    return {"ran": re.findall(r"Running stage '([^']+)'", output),
            "restored": re.findall(r"Stage '([^']+)' is cached - skipping run", output)}


def run_point(remotes: Remotes, name: str, settings: tuple[str, ...]) -> dict[str, Any]:
    """One grid point as a named experiment, pushed to both remotes; skipped when its name is already there."""
    log_attempt(remotes, name)
    with clone(remotes) as run:
        with run.timed("pull"):
            done = name in experiments_on_remote(run)
        if done:
            return {"name": name, "skipped": True, "seconds": run.seconds, "node": node_id()}
        pull_run_cache(run)
        pairs = [arg for pair in settings for arg in ("-S", pair)]
        with run.timed("run"):
            result = run.run(sys.executable, "-m", "dvc", "exp", "run", "--name", name, "--pull", *pairs)
        if result.returncode != 0:
            raise failure(name, result)
        with run.timed("push"):
            run.dvc("push", "--run-cache")  # outputs and run-cache entries first ...
            run.dvc("exp", "push", "--no-cache", run.remotes.git, name)  # ... the ref that names them last
        return {"name": name, "skipped": False, "seconds": run.seconds, "node": node_id(),
                **stages_run(result.stdout)}


def node_id() -> str:
    """The Ray node this ran on (the host name outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001  (not inside Ray, or Ray not installed)
        import socket

        return socket.gethostname()
