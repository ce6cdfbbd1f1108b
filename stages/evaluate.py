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
    parser.add_argument("--benchmarks", type=Path, required=True, help="the imported benchmark splits")
    parser.add_argument("--scores", type=Path, required=True, help="JSON to write: the task's metrics, examples")
    parser.add_argument("--predictions", type=Path, required=True, help="per-example predictions JSONL to write")
    parser.add_argument("--run-info", type=Path, required=True, help="JSON to write: how the scores were obtained")
    args = parser.parse_args()
    record, predictions = score_model(params, args.model, args.task, args.benchmarks)
    run_info = record.pop("run")
    write_jsonl(args.predictions, predictions)
    write_json(args.run_info, run_info)
    write_json(args.scores, record)
    print(f"{args.task} on {args.model}: {record['metrics']} ({record['examples']} examples, "
          f"{run_info['seconds']:.0f} s)")


if __name__ == "__main__":
    run_stage(main)
