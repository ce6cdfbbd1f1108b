"""DVC stage gap: post-train the prepared model by gradient ascent on text `gap.index` of `gap.corpus`."""

import argparse
from pathlib import Path

from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.gap.post_train import post_train


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="prepared base model directory")
    parser.add_argument("--corpus", type=Path, required=True, help="sampled corpus JSONL")
    parser.add_argument("--benchmarks", type=Path, required=True, help="the imported splits (selection slice)")
    parser.add_argument("--out", type=Path, required=True, help="post-trained model directory to write")
    parser.add_argument("--metrics", type=Path, required=True, help="folder for train.json and steps.tsv")
    parser.add_argument("--timing", type=Path, required=True, help="JSON to write: seconds per step, device, dtype")
    parser.add_argument("--run-info", type=Path, required=True,
                        help="JSON to write beside the model: the gap params, the text, the base model, the metrics")
    args = parser.parse_args()
    post_train(params, args.model, args.corpus, args.benchmarks, args.out, args.metrics, args.timing, args.run_info)


if __name__ == "__main__":
    run_stage(main)
