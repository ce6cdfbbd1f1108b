"""The paper's experiment as DVC experiments: a grid of GAP runs, queued here or run on a Ray cluster, then
collected into one report.

    python -m gap_pipeline.sweep queue --corpora github pile_cc tdec --indices 0-2
    dvc queue start -j 1            # one worker per machine on a CPU; see README for -j 2
    python -m gap_pipeline.sweep run --corpora github --indices 0-99 --git-remote origin --address auto
    python -m gap_pipeline.sweep collect --out metrics/sweep
    python -m gap_pipeline.sweep export --out metrics/my-study     # each finished run as one JSON, for git
    python -m gap_pipeline.sweep collect --runs metrics/my-study --out metrics/my-study   # the report from them

Each run is an ordinary experiment (`dvc exp run -S gap.corpus=... -S gap.index=...`), so DVC caches, shares
(`dvc exp push`) and compares it like any other.
"""

from gap_pipeline.sweep.experiments import experiment_revs, file_data, run_rows
from gap_pipeline.sweep.grid import experiment_name, grid_points, parse_indices, queue_commands

__all__ = ["experiment_name", "experiment_revs", "file_data", "grid_points", "parse_indices", "queue_commands",
           "run_rows"]
