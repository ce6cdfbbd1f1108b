"""Reading a sweep's experiments back from `dvc exp show --json`, which also sees experiments pulled from
another machine (`dvc exp pull`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from typing import Any

SUMMARY_FILE = "metrics/summary/summary.json"
PARAMS_FILE = "params.yaml"


def run_command(command: list[str]) -> str:
    """``command``'s stdout; a failure raises with its stderr."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr.strip()}")
    return result.stdout


def experiment_revs(shown: list[dict]) -> Iterable[dict]:
    """Every experiment under every baseline commit of `dvc exp show --json`, with its name and data."""
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment.get("revs", []):
                if rev.get("data") and not rev.get("error"):
                    yield rev


def file_data(data: dict, section: str, path: str) -> dict:
    """One params or metrics file's values from an experiment's `data` in `dvc exp show --json` ({} if absent)."""
    return ((data.get(section) or {}).get(path) or {}).get("data") or {}


def _timestamp(rev: dict) -> str:
    return str(rev["data"].get("timestamp") or "")  # ISO 8601: sorts as text


def latest_per_params(shown: list[dict]) -> list[dict]:
    """Each finished experiment's rev, keeping only the newest of those with identical params.

    `--all-commits` lists the experiments of every baseline commit, so a grid point queued again after a code
    change would otherwise count twice; runs that differ in any param (another `gap.steps`, say) all count.
    """
    newest: dict[str, dict] = {}
    for rev in experiment_revs(shown):
        if "run" not in file_data(rev["data"], "metrics", SUMMARY_FILE):
            continue  # queued, running, failed, or from a version of the pipeline before sweeps
        key = json.dumps(file_data(rev["data"], "params", PARAMS_FILE), sort_keys=True, default=str)
        if key not in newest or _timestamp(rev) > _timestamp(newest[key]):
            newest[key] = rev
    return list(newest.values())


def run_rows(shown: list[dict]) -> list[dict[str, Any]]:
    """One row per finished experiment (the newest of identical reruns): params, kept step, per-task scores."""
    rows = []
    for rev in latest_per_params(shown):
        params = file_data(rev["data"], "params", PARAMS_FILE)
        summary = file_data(rev["data"], "metrics", SUMMARY_FILE)
        rows.append({
            "experiment": rev.get("name") or rev["rev"][:7],
            "rev": rev["rev"],
            "model": params["model"]["name"],
            # Runs from before the paper's protocol existed selected on a disjoint slice.
            "protocol": params["gap"].get("select", {}).get("protocol", "disjoint"),
            "corpus": params["gap"]["corpus"],
            "index": params["gap"]["index"],
            "source_row": summary["run"]["source_row"],
            "epoch": summary["run"]["kept_step"],
            "base": {task: s["base"] for task, s in summary["tasks"].items()},
            "gap": {task: s["gap"] for task, s in summary["tasks"].items()},
            "reference": summary.get("reference", {}),
            # With gap.trajectory: every step's gain and both protocols' (reporting.protocols); else absent.
            **{key: summary[key] for key in ("trajectory", "protocols", "selection_bias") if key in summary},
        })
    # A fixed order, so the report's files change in git only when a run does.
    return sorted(rows, key=lambda row: (row["model"], row["corpus"], row["index"], row["experiment"]))
