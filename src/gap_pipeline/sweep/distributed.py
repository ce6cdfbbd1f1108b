"""A sweep as Ray tasks: the shared stages once per model, then every grid point, each in a clone of its own.

Ray retries a task whose worker or node dies (on another node when one is left); a point refused for bad input
fails once and is reported with its error line. Points already on the git remote are skipped, so running the
same command again after a crash resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gap_pipeline.sweep.clone_run import PointRefused, Remotes, run_point, run_shared
from gap_pipeline.sweep.grid import GridPoint

RETRIES_ON_NODE_LOSS = 3  # Ray reruns a task this many times when its worker or node dies


@dataclass
class SweepOutcome:
    """What a sweep did: the runs that finished (with their timings), skipped, and failed (name -> line)."""

    shared: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def start_ray(address: str | None, cpus_per_run: float) -> None:
    """Join the cluster at ``address`` (``auto``: the one this node belongs to), or start Ray on this machine."""
    import ray

    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=max(int(os.cpu_count() or 1), int(cpus_per_run)), include_dashboard=False,
                 log_to_driver=False)


def _error_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, PointRefused):
        return cause.line
    return str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__


def run_sweep(points: Sequence[GridPoint], remotes: Remotes, *, cpus_per_run: float = 1, gpus_per_run: float = 0,
              already_done: set[str] = frozenset(), progress: bool = True) -> SweepOutcome:
    """Run ``points`` on the connected Ray cluster; the shared stages of each model first."""
    import ray
    from tqdm import tqdm

    outcome = SweepOutcome(skipped=[p.name for p in points if p.name in already_done])
    todo = [p for p in points if p.name not in already_done]
    if not todo:
        return outcome
    options = {"num_cpus": cpus_per_run, "num_gpus": gpus_per_run, "max_retries": RETRIES_ON_NODE_LOSS,
               "retry_exceptions": False}
    shared_task = ray.remote(run_shared).options(**options)
    point_task = ray.remote(run_point).options(**options)

    # The shared stages once per distinct set of shared params (one per model), before any point needs them.
    shared = {p.shared_settings for p in todo}
    for ref in [shared_task.remote(remotes, settings) for settings in shared]:
        try:
            outcome.shared.append(ray.get(ref))
        except Exception as error:  # noqa: BLE001  (no point can run without them)
            raise RuntimeError(f"the shared stages failed, so no point ran: {_error_line(error)}") from None

    pending = {point_task.remote(remotes, p.name, p.settings): p for p in todo}
    with tqdm(total=len(pending), desc="grid points", unit="run", disable=not progress) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            point = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
                (outcome.skipped.append(point.name) if result["skipped"] else outcome.finished.append(result))
            except Exception as error:  # noqa: BLE001  (each point's failure is reported, the others go on)
                outcome.failed[point.name] = _error_line(error)
            bar.set_postfix(finished=len(outcome.finished), failed=len(outcome.failed), running=len(pending))
            bar.update()
    return outcome
