"""``python -m gap_pipeline.sweep queue|run|collect``: see the package docstring and the README."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import gap_pipeline.sweep as sweep
from gap_pipeline.core.errors import ParamsError
from gap_pipeline.sweep.experiments import export_runs, finished_runs, read_runs, rows_of, run_command
from gap_pipeline.sweep.grid import grid_points, parse_indices, queue_commands


def _grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpora", nargs="+", required=True, help="keys of corpora / hub_corpora")
    parser.add_argument("--indices", required=True, help="text indices, e.g. 0-99 (the paper) or 0-2,7")
    parser.add_argument("--models", nargs="+", default=[None], help="model.name values (default: params.yaml's)")
    parser.add_argument("-S", "--set-param", action="append", default=[], dest="extra",
                        help="another param for every experiment, as for `dvc exp run -S`")


def _git(*args: str) -> str:
    return run_command(["git", *args]).strip()


def unimported_stages() -> list[str]:
    """The import stages whose outputs this workspace lacks (so the DVC cache may too), from `dvc status`.

    Queued experiments run in copies of the repository under `.dvc/tmp/exps/`, where `../shared` names nothing,
    and restore the imports from the cache, which a fresh clone has empty: checked before anything is queued."""
    dvc = [sys.executable, "-m", "dvc"]
    stages = [name for name in run_command([*dvc, "stage", "list", "--name-only"]).split()
              if name.startswith("import_")]
    return sorted(json.loads(run_command([*dvc, "status", "--json", *stages]) or "{}"))


def run_on_ray(args: argparse.Namespace) -> int:
    from gap_pipeline.sweep.clone_run import Remotes
    from gap_pipeline.sweep.distributed import run_sweep, start_ray

    points = grid_points(args.corpora, parse_indices(args.indices), args.models, args.extra)
    git_remote = args.git_remote
    if "://" not in git_remote and not Path(git_remote).exists():  # a remote's name, as `git push origin`
        git_remote = _git("remote", "get-url", git_remote)
    remotes = Remotes(git=git_remote, rev=_git("rev-parse", "HEAD"), dvc=args.dvc_remote, workdir=args.workdir)
    done = set(run_command([sys.executable, "-m", "dvc", "exp", "list", git_remote, "--name-only"]).split())
    start_ray(args.address, args.cpus_per_run)
    outcome = run_sweep(points, remotes, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                        already_done=done)
    print(f"{len(outcome.finished)} ran, {len(outcome.skipped)} already on {git_remote}, "
          f"{len(outcome.failed)} failed")
    for name, line in sorted(outcome.failed.items()):
        print(f"failed {name}: {line}")
    if args.report:
        report = {"shared": outcome.shared, "finished": outcome.finished, "skipped": outcome.skipped,
                  "failed": outcome.failed}
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if outcome.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gap_pipeline.sweep", description=sweep.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    queue = commands.add_parser("queue", help="queue one experiment per (model, corpus, text index)")
    _grid_arguments(queue)
    queue.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    run = commands.add_parser("run", help="run the grid as Ray tasks, through a git remote and a DVC remote")
    _grid_arguments(run)
    run.add_argument("--git-remote", required=True,
                     help="git remote (name or URL) the runs clone from and push experiments to")
    run.add_argument("--dvc-remote", help="DVC remote URL for outputs and run-cache (default: the project's)")
    run.add_argument("--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: start one here)")
    run.add_argument("--cpus-per-run", type=float, default=1, help="CPUs Ray reserves for each run")
    run.add_argument("--gpus-per-run", type=float, default=0, help="GPUs Ray reserves for each run")
    run.add_argument("--workdir", help="where each node makes its clones (default: its temp folder)")
    run.add_argument("--report", help="write what ran, where and how long each phase took, as JSON")
    collect = commands.add_parser("collect", help="per-run table, Figure 1 and the comparison with the paper")
    collect.add_argument("--out", type=Path, default=Path("metrics/sweep"), help="folder for the report")
    collect.add_argument("--paper", type=Path, default=Path("../shared/paper"),
                         help="folder with the paper's gap_runs_{classification,dialog}.csv")
    collect.add_argument("--runs", type=Path,
                         help="read the runs from a folder `export` wrote (a study in git) instead of `dvc exp show`")
    export = commands.add_parser("export", help="one JSON per finished experiment (params, summary, train)")
    export.add_argument("--out", type=Path, required=True, help="folder for the files, e.g. metrics/<study>")
    args = parser.parse_args(argv)
    if args.command == "queue":
        # Nothing to pin: every stage reads its data inside the repository (the imports' outputs), which a
        # queued copy of the repo finds in the DVC cache, once the workspace has imported it.
        missing = [] if args.dry_run else unimported_stages()
        if missing:
            raise RuntimeError(f"{', '.join(missing)}: not imported in this workspace, and queued experiments "
                               "restore the imports from its cache (their copies under .dvc/tmp/exps cannot reach "
                               f"../shared); run `dvc repro {' '.join(missing)}` first")
        for command in queue_commands(args.corpora, parse_indices(args.indices), args.models, args.extra):
            print(" ".join(command))
            if not args.dry_run:
                run_command(command)
        return 0
    if args.command == "run":
        return run_on_ray(args)
    if args.command == "collect" and args.runs:
        runs = read_runs(args.runs)
    else:
        runs = finished_runs(json.loads(run_command(["dvc", "exp", "show", "--json", "--all-commits"])))
    if args.command == "export":
        for path in export_runs(runs, args.out):
            print(path)
        return 0
    from gap_pipeline.reporting.sweep_report import write_report

    print(write_report(rows_of(runs), args.out, args.paper))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ParamsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
