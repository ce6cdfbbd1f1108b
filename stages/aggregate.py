"""DVC stage aggregate: summary.json (with paired intervals), the paper's per-run CSVs and plot data."""

import argparse
from pathlib import Path

from gap_pipeline.core.io import read_json, read_jsonl, write_json, write_table
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.core.tasks import FAMILIES
from gap_pipeline.reporting.protocols import protocol_summary, step_scores
from gap_pipeline.reporting.run_summary import ModelScores, gain_table, paper_row, score_table, summarize


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scores", type=Path, required=True,
                        help="folder with base/, gap/ and reference/<model>/ task metrics")
    parser.add_argument("--predictions", type=Path, required=True,
                        help="folder with the same models' per-example predictions")
    parser.add_argument("--corpus", type=Path, required=True, help="the sampled corpus GAP read a text from")
    parser.add_argument("--train", type=Path, required=True, help="the gap stage's train.json (the step it kept)")
    parser.add_argument("--trajectory", type=Path, required=True, help="the trajectory stage's folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for summary.json and the tables")
    args = parser.parse_args()
    base, gap = (ModelScores.load(args.scores / m, args.predictions / m) for m in ("base", "gap"))
    references = {name: ModelScores.load(args.scores / "reference" / name, args.predictions / "reference" / name)
                  for name in params.reference.models}
    text = read_jsonl(args.corpus)[params.gap.index]
    run = {"corpus": params.gap.corpus, "index": text.get("source_row", params.gap.index), "model": params.model.name}
    # The step gap kept: the best on the selection slice, or the last one within gap.loss_ceiling.
    kept = read_json(args.train)["steps"]
    summary = summarize(base, gap, references)
    protocol = params.gap.select.protocol
    summary["run"] = {"model": params.model.name, "source_row": run["index"], "kept_step": kept,
                      "selection_protocol": protocol,
                      # The paper's protocol kept the step that scored best on the reported examples themselves.
                      "optimistically_biased": protocol == "paper"}
    steps = step_scores(args.trajectory)
    if steps is not None:  # gap.trajectory: every step on the reported examples, and both protocols' picks
        summary |= protocol_summary(steps, kept, params.gap.select.criterion)
    write_json(args.out / "summary.json", summary)
    for family in FAMILIES:
        rows = [paper_row(base.scores, family, epoch=0, **run), paper_row(gap.scores, family, epoch=kept, **run)]
        write_table(args.out / f"runs_{family}.csv", rows, list(rows[0]), delimiter=",")
    write_table(args.out / "scores.tsv", score_table(base.scores, gap.scores), ["task", "model", "metric", "score"])
    write_table(args.out / "gains.tsv", gain_table(summary), ["family", "task", "metric", "gain", "low", "high"])
    print(f"summary of {len(base.results)} base and {len(gap.results)} GAP task scores in {args.out}")


if __name__ == "__main__":
    run_stage(main)
