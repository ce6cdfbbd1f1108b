"""DVC stage check_params: validate params.yaml, and the checks that span stages, before those stages run.

Every stage after the imports depends on its output, so DVC runs it first; a bad value stops the pipeline here,
before DVC removes any other stage's outputs. The output never changes while the params are valid, so passing
this check reruns nothing.
"""

import argparse
from functools import partial
from pathlib import Path

from gap_pipeline.core.checks import check_splits
from gap_pipeline.core.io import atomic_path
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.task_data import split_size

VALID = "params.yaml passed check_params\n"


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmarks", type=Path, required=True, help="the imported benchmark splits")
    parser.add_argument("--out", type=Path, required=True, help="marker file, the same whenever the params are valid")
    args = parser.parse_args()
    params.model_dump()  # validated as a whole: this stage answers for every key
    checked = check_splits(params, partial(split_size, args.benchmarks))
    with atomic_path(args.out) as tmp:
        tmp.write_text(VALID, encoding="utf-8")
    print(f"params valid; selection slice clear of the reported examples on {checked or 'no shared split'}")


if __name__ == "__main__":
    run_stage(main)
