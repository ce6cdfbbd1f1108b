"""A sweep's report: the per-run tables in the paper's format, Figure 1, and our runs beside the paper's.

Figure 1 of the paper shows one dot per GAP run, grouped by corpus, against the untouched model (a line) and
the next larger model (another line). The comparison answers the paper's two questions per corpus: how often
GAP beat the baseline, and by how much on average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a CI runner
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gap_pipeline.core.io import atomic_path, write_table  # noqa: E402
from gap_pipeline.core.tasks import FAMILIES, family_average  # noqa: E402
from gap_pipeline.reporting.run_summary import corpus_label, paper_file, paper_row  # noqa: E402
from gap_pipeline.reporting.statistics import mean_ci, sign_test, wilson_interval  # noqa: E402

FAMILY_TITLES = {"dialogue": "Dialogue tasks: unigram F1 average", "classification": "Classification: accuracy average"}


def paper_baselines(paper: pd.DataFrame) -> dict[str, float]:
    """Each OPT size's untouched score, exactly as the released rows carry it: a run whose best epoch was 0."""
    untouched = paper[paper["epoch"] == 0]
    return untouched.groupby("model")["average"].first().to_dict()


def per_run_table(runs: list[dict[str, Any]], family: str) -> pd.DataFrame:
    """The paper's per-run format (corpora,index,epoch,average,model,<tasks>), our baseline rows first."""
    rows, baselines = [], {}
    for run in runs:
        baselines.setdefault(run["model"], paper_row(run["base"], family, run["corpus"], "", 0, run["model"]))
        rows.append(paper_row(run["gap"], family, run["corpus"], run["source_row"], run["epoch"], run["model"]))
    for row in baselines.values():
        row["corpora"] = "baseline"
    return pd.DataFrame([*baselines.values(), *sorted(rows, key=lambda r: (r["model"], r["corpora"], r["index"]))])


def run_label(run: dict[str, Any]) -> str:
    """The model, marked when its step was selected on the reported examples (the paper's protocol)."""
    return run["model"] + (" (paper protocol: optimistic)" if run.get("protocol") == "paper" else "")


def compare_with_paper(runs: list[dict[str, Any]], paper_dir: Path) -> pd.DataFrame:
    """Per family and corpus: the share of runs above their baseline and the mean gain, ours beside the paper's."""
    ours = [
        {"family": family, "corpus": corpus_label(run["corpus"]), "who": run_label(run),
         "gain": family_average(run["gap"], family) - family_average(run["base"], family)}
        for run in runs for family in FAMILIES
    ]
    theirs = []
    for family in FAMILIES:
        paper = pd.read_csv(paper_dir / paper_file(family))
        baselines = paper_baselines(paper)
        for row in paper.itertuples():
            base = baselines[row.model]
            theirs.append({"family": family, "corpus": row.corpora, "who": f"paper OPT-{row.model}",
                           "gain": row.average - base})
    frame = pd.DataFrame(ours + theirs)
    rows = [{"family": family, "corpus": corpus, "who": who, **across_runs(group["gain"].to_numpy())}
            for (family, corpus, who), group in frame.groupby(["family", "corpus", "who"], sort=True)]
    return pd.DataFrame(rows)


def across_runs(gains: np.ndarray) -> dict[str, Any]:
    """A group of runs against their baselines: the mean gain with its bootstrap 95% interval over runs, the share
    above baseline with its Wilson interval, and the sign test of above against below."""
    # "Above" means by more than float noise: a run that kept step 0 scores exactly its baseline.
    above, below = int((gains > 1e-9).sum()), int((gains < -1e-9).sum())
    low, high = mean_ci(gains) if len(gains) > 1 else (float(gains[0]), float(gains[0]))
    share_low, share_high = wilson_interval(above, len(gains))
    return {"runs": len(gains), "above_baseline": above / len(gains), "above_ci95_low": share_low,
            "above_ci95_high": share_high, "mean_gain": float(gains.mean()), "mean_gain_ci95_low": low,
            "mean_gain_ci95_high": high, "sign_test_p": sign_test(above, below)}


def side_by_side(comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, corpus); per model, the share of runs above baseline and the mean gain, each with its
    95% interval."""
    comparison = comparison.assign(
        above=[f"{a:.0%} [{lo:.0%}, {hi:.0%}]" for a, lo, hi in
               comparison[["above_baseline", "above_ci95_low", "above_ci95_high"]].itertuples(index=False)],
        gain=[f"{g:+.4f} [{lo:+.4f}, {hi:+.4f}]" for g, lo, hi in
              comparison[["mean_gain", "mean_gain_ci95_low", "mean_gain_ci95_high"]].itertuples(index=False)])
    wide = comparison.pivot(index=["family", "corpus"], columns="who", values=["above", "gain"])
    wide.columns = [f"{who}: {stat}" for stat, who in wide.columns]
    ours = sorted(c for c in wide.columns if not c.startswith("paper"))
    return wide[ours + sorted(c for c in wide.columns if c.startswith("paper"))].reset_index()


def figure_points(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dots and lines of Figure 1 as one long table (`dvc plots` data): one row per run and family."""
    points = []
    for run in runs:
        corpus = corpus_label(run["corpus"])
        for family in FAMILIES:
            points.append({"family": family, "series": f"GAP {run_label(run)}", "corpus": corpus,
                           "index": run["source_row"], "epoch": run["epoch"],
                           "score": family_average(run["gap"], family)})
    for model, run in {run["model"]: run for run in runs}.items():
        for family in FAMILIES:
            points.append({"family": family, "series": f"baseline {model}", "corpus": "", "index": "", "epoch": 0,
                           "score": family_average(run["base"], family)})
            for name, averages in run["reference"].items():
                points.append({"family": family, "series": f"reference {name}", "corpus": "", "index": "",
                               "epoch": 0, "score": averages[family]})
    return points


def runs_by_series(frame: pd.DataFrame, family: str) -> dict[str, dict[str, np.ndarray]]:
    """Each GAP series (one per model and protocol) and its scores per corpus: runs of different models never pool.

    ``frame``: `figure_points` as a table."""
    dots = frame[frame["series"].str.startswith("GAP") & (frame["family"] == family)]
    return {series: {corpus: group["score"].to_numpy() for corpus, group in rows.groupby("corpus")}
            for series, rows in dots.groupby("series")}


def draw_figure(points: list[dict[str, Any]], path: Path) -> None:
    """Figure 1: per family and model, GAP runs as dots by corpus with their mean and interval; the model's
    baseline as a solid line of the same colour, references dashed grey."""
    frame = pd.DataFrame(points)
    corpora = sorted(frame[frame["series"].str.startswith("GAP")]["corpus"].unique())
    fig, axes = plt.subplots(1, len(FAMILIES), figsize=(5.5 * len(FAMILIES), 4.2))
    for ax, family in zip(axes, FAMILIES, strict=True):
        series = runs_by_series(frame, family)
        colours = {name: f"C{k}" for k, name in enumerate(series)}
        width = 0.8 / len(series)
        for k, (name, per_corpus) in enumerate(series.items()):
            for x, corpus in enumerate(corpora):
                ys = per_corpus.get(corpus, np.array([]))
                centre = x - 0.4 + width * (k + 0.5)
                offsets = [(i - (len(ys) - 1) / 2) * min(0.08, width / (len(ys) + 2)) for i in range(len(ys))]
                ax.scatter([centre - width / 6 + o for o in offsets], ys, s=36, alpha=0.8, color=colours[name],
                           label=name if x == 0 else None, zorder=3)
                if len(ys) > 1:  # the mean of this model's runs on the corpus, with its bootstrap 95% interval
                    low, high = mean_ci(ys)
                    ax.errorbar(centre + width / 3, ys.mean(), yerr=[[ys.mean() - low], [high - ys.mean()]],
                                fmt="D", color=colours[name], markeredgecolor="black", markersize=5, capsize=4,
                                zorder=4, label=f"{name}: mean, 95% interval" if x == 0 else None)
        lines = frame[(frame["family"] == family) & ~frame["series"].str.startswith("GAP")]
        for row in lines.itertuples():
            model = row.series.removeprefix("baseline ")
            colour = next((c for name, c in colours.items() if name.startswith(f"GAP {model}")), "black")
            baseline = row.series.startswith("baseline")
            ax.axhline(row.score, linestyle="-" if baseline else "--", color=colour if baseline else "grey",
                       linewidth=1.2, label=f"{row.series}: {row.score:.4f}")
        ax.set_xticks(range(len(corpora)), corpora)
        ax.set_xlim(-0.6, len(corpora) - 0.4)
        ax.set_title(FAMILY_TITLES[family])
        ax.set_xlabel("corpus of the GAP text (one dot per run)")
        ax.legend(fontsize=7, loc="best")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_report(runs: list[dict[str, Any]], out_dir: Path, paper_dir: Path) -> str:
    """Write runs_<family>.csv, figure1.png, figure1.tsv and comparison.csv; return the comparison as text."""
    if not runs:
        return "no finished experiments to collect: `dvc exp show` lists none with metrics/summary/summary.json"
    for family in FAMILIES:
        table = per_run_table(runs, family)
        write_table(out_dir / f"runs_{family}.csv", table.to_dict("records"), list(table.columns), delimiter=",")
    points = figure_points(runs)
    write_table(out_dir / "figure1.tsv", points, list(points[0]))
    draw_figure(points, out_dir / "figure1.png")
    comparison = compare_with_paper(runs, paper_dir)
    write_table(out_dir / "comparison.csv", comparison.to_dict("records"), list(comparison.columns),
                delimiter=",")
    shown = side_by_side(comparison).to_string(index=False, float_format=lambda v: f"{v:.4f}")
    return f"{len(runs)} runs collected into {out_dir}\n\nGAP gain over the untouched model, per corpus:\n{shown}"
