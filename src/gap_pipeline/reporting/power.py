"""What a run of this size can detect: per family, the smallest gain at 80% power, and the examples it would take.

    python -m gap_pipeline.reporting.power                       # GAP against base, default gain: the paper's
    python -m gap_pipeline.reporting.power --gain 0.005 --paper ../shared/paper

With both models' predictions the spread is that of the paired differences (GAP minus base, example by example),
as the pipeline's own intervals use. With the base model's alone (before any GAP run) it is the spread of the
base scores themselves, an upper bound for a paired design only when GAP's scores correlate with base's (they do:
GAP moves a model a few steps); the output says which one it used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from gap_pipeline.core.tasks import FAMILIES
from gap_pipeline.reporting.run_summary import ModelScores, paired_differences_by_task, paper_file
from gap_pipeline.reporting.statistics import Z80, Z95, examples_needed

PAPER_MODEL = "350M"  # the paper's smallest model: its mean gain is the default effect to look for


def paper_mean_gain(paper_dir: Path, family: str, model: str = PAPER_MODEL) -> float:
    """The mean gain over the paper's released runs of ``model``: each run's average minus its baseline."""
    runs = pd.read_csv(paper_dir / paper_file(family))
    runs = runs[runs["model"] == model]
    baseline = runs[runs["epoch"] == 0]["average"].iloc[0]
    return float((runs["average"] - baseline).mean())


def spreads(base: ModelScores, gap: ModelScores | None, tasks: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Per task the SD of what is compared (paired differences, or base scores alone) and the examples scored."""
    if gap is not None:
        differences = paired_differences_by_task(base, gap, tasks)
    else:
        differences = {t: np.array(list(base.examples[t].values())) for t in tasks if t in base.examples}
    return ({t: float(d.std(ddof=1)) for t, d in differences.items() if len(d) > 1},
            {t: len(d) for t, d in differences.items() if len(d) > 1})


def power_table(base: ModelScores, gap: ModelScores | None, gains: dict[str, float]) -> pd.DataFrame:
    """One row per family: tasks, examples per task now, the gain detectable now, the examples a gain needs."""
    rows = []
    for family, members in FAMILIES.items():
        sds, counts = spreads(base, gap, list(members))
        if not sds:
            continue
        # The family delta averages its tasks' means: var = sum_t sd_t^2 / n_t, over tasks squared.
        se = np.sqrt(sum(sd**2 / counts[t] for t, sd in sds.items())) / len(sds)
        rows.append({"family": family, "tasks": len(sds), "examples_per_task": min(counts.values()),
                     "sd": float(np.mean(list(sds.values()))), "detectable_now": float((Z95 + Z80) * se),
                     "gain": gains[family], "examples_needed": examples_needed(list(sds.values()), gains[family])})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", type=Path, default=Path("metrics/eval"), help="the evaluate stages' scores")
    parser.add_argument("--predictions", type=Path, default=Path("data/predictions"), help="their predictions")
    parser.add_argument("--gain", type=float, help="the gain to detect (default: the paper's mean gain of OPT-350M)")
    parser.add_argument("--paper", type=Path, default=Path("../shared/paper"), help="the paper's per-run tables")
    args = parser.parse_args()
    base = ModelScores.load(args.scores / "base", args.predictions / "base")
    gap_dir = args.scores / "gap"
    gap = ModelScores.load(gap_dir, args.predictions / "gap") if any(gap_dir.glob("*.json")) else None
    gains = {family: args.gain if args.gain is not None else paper_mean_gain(args.paper, family)
             for family in FAMILIES}
    table = power_table(base, gap, gains)
    spread = "paired differences GAP - base" if gap is not None else "base scores alone (no GAP run yet)"
    print(f"spread from the {spread}; 80% power, two-sided 5% test\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
