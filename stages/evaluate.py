"""DVC stage evaluate@<model>-<task>: score one model on one zero-shot task through lm-eval."""

import _checkout  # noqa: F401, I001  (first: the package below comes from this checkout)
import argparse
from pathlib import Path

from gap_pipeline.cli import run_stage
from gap_pipeline.evaluation import score_model
from gap_pipeline.outputs import write_json, write_jsonl
from gap_pipeline.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="model directory to score")
    parser.add_argument("--task", required=True, help="a key of eval.tasks in params.yaml")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--predictions", type=Path, required=True, help="per-example predictions JSONL to write")
    args = parser.parse_args()
    record, predictions = score_model(load_params(), args.model, args.task)
    write_jsonl(args.predictions, predictions)
    write_json(args.metrics, record)
    seconds = record["seconds"]
    print(f"{args.task} on {args.model}: {record['metrics']} ({record['examples']} examples, {seconds:.0f} s)")


if __name__ == "__main__":
    run_stage(main)
