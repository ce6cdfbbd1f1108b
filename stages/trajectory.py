"""DVC stage trajectory: with `gap.trajectory`, the reported examples scored after every ascent step.

Off (the default), it writes only `{"enabled": false}` and loads no model; the aggregate stage then leaves the
trajectory and the protocols out of summary.json.
"""

import argparse
from pathlib import Path

from gap_pipeline.core.io import atomic_path, write_json
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.core.tasks import TRAJECTORY_STEPS_FILE


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="prepared base model directory")
    parser.add_argument("--corpus", type=Path, required=True, help="sampled corpus JSONL")
    parser.add_argument("--benchmarks", type=Path, required=True, help="the imported splits")
    parser.add_argument("--out", type=Path, required=True, help="folder to write: steps.json, <task>.jsonl")
    args = parser.parse_args()
    if not params.gap.trajectory:
        with atomic_path(args.out, directory=True) as tmp:
            write_json(tmp / TRAJECTORY_STEPS_FILE, {"enabled": False})
        print("trajectory off (gap.trajectory: false)")
        return
    # Imported only when on: torch, transformers and lm-eval take seconds to load, which an off run (the default
    # pipeline, and every rerun of this stage while off) would spend for nothing.
    from gap_pipeline.gap.trajectory import score_trajectory

    record = score_trajectory(params, args.model, args.corpus, args.benchmarks, args.out)
    print(f"trajectory of steps {record['steps']} in {args.out}")


if __name__ == "__main__":
    run_stage(main)
