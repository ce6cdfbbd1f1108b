"""The paper's experiment as DVC experiments: queue a grid of GAP runs, then collect them into one report.

    python -m gap_pipeline.sweep queue --corpora github pile_cc tdec --indices 0-2
    dvc queue start -j 1            # one worker per machine on a CPU; see README for -j 2
    python -m gap_pipeline.sweep collect --out metrics/sweep

Each run is an ordinary experiment (`dvc exp run --queue -S gap.corpus=... -S gap.index=...`), so DVC caches,
shares (`dvc exp push`) and compares it like any other. Collect reads the experiments back through
`dvc exp show --json`, which also sees experiments pulled from another machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gap_pipeline.core.errors import ParamsError

SUMMARY_FILE = "metrics/summary/summary.json"
PARAMS_FILE = "params.yaml"


def parse_indices(spec: str) -> list[int]:
    """``"0-2,7"`` -> ``[0, 1, 2, 7]``: text indices as people write them on a command line."""
    indices: list[int] = []
    try:
        for part in spec.split(","):
            low, _, high = part.partition("-")
            indices.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ParamsError(f"--indices {spec!r}: expected numbers and ranges such as 0-2,7") from None
    return indices


def experiment_name(corpus: str, index: int, model: str | None) -> str:
    return "-".join(["gap", corpus, str(index), *([model] if model else [])]).replace("/", "_").replace(".", "_")


def queue_commands(
    corpora: Sequence[str], indices: Sequence[int], models: Sequence[str | None] = (None,),
    extra: Sequence[str] = (),
) -> list[list[str]]:
    """One `dvc exp run --queue` command per (model, corpus, index) of the grid; ``extra`` adds ``-S`` pairs."""
    commands = []
    for model, corpus, index in itertools.product(models, corpora, indices):
        command = ["dvc", "exp", "run", "--queue", "--name", experiment_name(corpus, index, model),
                   "-S", f"gap.corpus={corpus}", "-S", f"gap.index={index}"]
        if model:
            command += ["-S", f"model.name={model}"]
        for pair in extra:
            command += ["-S", pair]
        commands.append(command)
    return commands


def _run(command: list[str]) -> str:
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
        })
    # A fixed order, so the report's files change in git only when a run does.
    return sorted(rows, key=lambda row: (row["model"], row["corpus"], row["index"], row["experiment"]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gap_pipeline.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    queue = commands.add_parser("queue", help="queue one experiment per (model, corpus, text index)")
    queue.add_argument("--corpora", nargs="+", required=True, help="keys of corpora / hub_corpora")
    queue.add_argument("--indices", required=True, help="text indices, e.g. 0-99 (the paper) or 0-2,7")
    queue.add_argument("--models", nargs="+", default=[None], help="model.name values (default: params.yaml's)")
    queue.add_argument("-S", "--set-param", action="append", default=[], dest="extra",
                       help="another param for every experiment, as for `dvc exp run -S`")
    queue.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    collect = commands.add_parser("collect", help="per-run table, Figure 1 and the comparison with the paper")
    collect.add_argument("--out", type=Path, default=Path("metrics/sweep"), help="folder for the report")
    collect.add_argument("--paper", type=Path, default=Path("../shared/paper"),
                         help="folder with the paper's gap_runs_{classification,dialog}.csv")
    args = parser.parse_args(argv)
    if args.command == "queue":
        # Nothing to pin: every stage reads its data inside the repository (the imports' outputs), which a
        # queued copy of the repo finds in the DVC cache.
        for command in queue_commands(args.corpora, parse_indices(args.indices), args.models, args.extra):
            print(" ".join(command))
            if not args.dry_run:
                _run(command)
        return
    from gap_pipeline.reporting.sweep_report import write_report

    shown = json.loads(_run(["dvc", "exp", "show", "--json", "--all-commits"]))
    print(write_report(run_rows(shown), args.out, args.paper))


if __name__ == "__main__":
    try:
        main()
    except (ParamsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
