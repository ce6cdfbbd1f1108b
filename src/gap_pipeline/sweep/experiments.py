"""Reading a sweep's experiments back from `dvc exp show --json`, which also sees experiments pulled from
another machine (`dvc exp pull`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gap_pipeline.core.io import write_json

SUMMARY_FILE = "metrics/summary/summary.json"
TRAIN_FILE = "metrics/gap/train.json"
PARAMS_FILE = "params.yaml"

MetricsReader = Callable[[str, str], dict]


def run_command(command: list[str]) -> str:
    """``command``'s stdout; a failure raises with its stderr."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr.strip()}")
    return result.stdout


def experiment_revs(shown: list[dict]) -> Iterable[dict]:
    """Every experiment under every baseline commit of `dvc exp show --json`, with its name and data, less those
    its executor reports unfinished: a queued or running one shows the metrics its baseline commit holds, which
    would read as a finished run of another model. (Experiments pulled from another machine carry no executor.)"""
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state", "success") != "success":
                continue
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


def committed_json(rev: str, path: str) -> dict:
    """A metrics file as the experiment's commit holds it.

    `dvc exp show` keeps only the numbers and strings of a metrics file and drops its lists: every interval
    (`delta_ci95`) and the whole trajectory. Both files a report reads are `cache: false` metrics, committed with
    the experiment (also one pulled with `dvc exp pull`), so git has them whole."""
    return json.loads(run_command(["git", "show", f"{rev}:{path}"]))


def finished_runs(shown: list[dict], read: MetricsReader = committed_json) -> list[dict[str, Any]]:
    """Each finished experiment (the newest of identical reruns) as ``{name, rev, params, summary, train}``: what
    a report needs of it, and what ``export_runs`` writes to a study's folder. ``shown`` picks the runs and gives
    their params; ``read`` their metrics files whole."""
    return [{"name": rev.get("name") or rev["rev"][:7], "rev": rev["rev"],
             "params": file_data(rev["data"], "params", PARAMS_FILE),
             "summary": read(rev["rev"], SUMMARY_FILE), "train": read(rev["rev"], TRAIN_FILE)}
            for rev in latest_per_params(shown)]


def export_runs(runs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One ``<experiment name>.json`` per run in ``out_dir``: a study's results in git, each file as it lands,
    readable by ``read_runs`` (and so by ``collect --runs``) on a machine without the experiments."""
    written = []
    for run in runs:
        path = out_dir / f"{run['name']}.json"
        write_json(path, run)
        written.append(path)
    return written


def read_runs(folder: Path) -> list[dict[str, Any]]:
    """The runs ``export_runs`` wrote to ``folder``; a file without ``params`` or ``summary`` is named and refused."""
    runs = []
    for path in sorted(folder.glob("*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in ("params", "summary") if not run.get(key)]
        if missing:
            raise RuntimeError(f"{path}: no {' or '.join(missing)}; write the folder with `python -m "
                               "gap_pipeline.sweep export` (one file per finished experiment)")
        runs.append({"name": path.stem, "rev": run.get("rev", ""), **run})
    return runs


def run_rows(shown: list[dict], read: MetricsReader = committed_json) -> list[dict[str, Any]]:
    """One row per finished experiment (the newest of identical reruns): params, kept step, per-task scores."""
    return rows_of(finished_runs(shown, read))


def rows_of(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's row of each run (``finished_runs`` or ``read_runs``)."""
    rows = []
    for run in runs:
        params, summary = run["params"], run["summary"]
        rows.append({
            "experiment": run["name"],
            "rev": run["rev"],
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
