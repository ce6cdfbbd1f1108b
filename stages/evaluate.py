"""DVC stage evaluate@<model>-<task>: score one model on one zero-shot task through lm-eval."""

import argparse
from pathlib import Path

from gap_pipeline.core.io import write_json, write_jsonl
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.scoring.evaluate import score_model


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="model directory to score")
    parser.add_argument("--task", required=True, help="a key of eval.tasks in params.yaml")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--predictions", type=Path, required=True, help="per-example predictions JSONL to write")
    args = parser.parse_args()
    record, predictions = score_model(params, args.model, args.task)
    write_jsonl(args.predictions, predictions)
    write_json(args.metrics, record)
    seconds = record["seconds"]
    print(f"{args.task} on {args.model}: {record['metrics']} ({record['examples']} examples, {seconds:.0f} s)")


if __name__ == "__main__":
    run_stage(main)
