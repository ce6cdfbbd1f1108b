"""DVC stage check_params: validate params.yaml and make every refusal the later stages could make before they run.

Every stage after the imports depends on its output, so DVC runs it first; a bad value stops the pipeline here,
before DVC removes any other stage's outputs. The checks are the ones registered in gap_pipeline.core.checks,
which the stages share. The output never changes while the params are valid, so passing reruns nothing.
"""

import argparse
from functools import partial
from pathlib import Path

from gap_pipeline.core.checks import Inputs, check_all
from gap_pipeline.core.io import atomic_path, read_jsonl
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.task_data import split_size

VALID = "params.yaml passed check_params\n"


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmarks", type=Path, required=True, help="the imported benchmark splits")
    parser.add_argument("--sources", type=Path, required=True, help="the imported corpora, <name>.jsonl each")
    parser.add_argument("--out", type=Path, required=True, help="marker file, the same whenever the params are valid")
    args = parser.parse_args()
    params.model_dump()  # validated as a whole: this stage answers for every key
    inputs = Inputs(split_size=partial(split_size, args.benchmarks),
                    corpus_size=lambda name: len(read_jsonl(args.sources / f"{name}.jsonl")))
    checked = check_all(params, inputs)["check_splits"]
    with atomic_path(args.out) as tmp:
        tmp.write_text(VALID, encoding="utf-8")
    print(f"params valid; selection slice clear of the reported examples on {checked or 'no shared split'}")


if __name__ == "__main__":
    run_stage(main)
