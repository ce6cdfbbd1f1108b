"""DVC stage import_benchmarks: check every record of the benchmark mirror (`data.benchmarks`), its fields and
how its task's lm-eval config renders it, and copy the splits in.

The splits enter the DVC graph here: later stages read `data/benchmarks`, inside the repository, so queued
experiments and other machines find them in the DVC cache, wherever the mirror was.
"""

import argparse
from pathlib import Path

from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.scoring.records import render_split
from gap_pipeline.task_data import import_benchmarks


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder to write, one sub-folder per task")
    args = parser.parse_args()
    # Each record's fields first (fast, and the message names the missing one), then rendered by its lm-eval task.
    rows = import_benchmarks(Path(params.data.benchmarks), args.out, render=render_split)
    shown = ", ".join(f"{task} ({', '.join(f'{s}: {n}' for s, n in splits.items())})" for task, splits in rows.items())
    print(f"imported {shown} into {args.out}")


if __name__ == "__main__":
    run_stage(main)
