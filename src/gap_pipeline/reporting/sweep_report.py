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
from matplotlib.ticker import MaxNLocator  # noqa: E402

from gap_pipeline.core.io import atomic_path, write_table  # noqa: E402
from gap_pipeline.core.tasks import FAMILIES, family_average  # noqa: E402
from gap_pipeline.reporting.run_summary import corpus_label, paper_file, paper_row  # noqa: E402
from gap_pipeline.reporting.statistics import mean_ci, sign_test, wilson_interval  # noqa: E402

# The paper's model drawn beside ours in the gain-by-step figure: its smallest, nearest ours in size.
PAPER_REFERENCE = "paper OPT-350M"
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
    """Per family and corpus: the share of runs above their baseline and the mean gain, ours beside the paper's;
    ``protocol`` says how each group's step was chosen (``paper``: on the reported examples themselves)."""
    ours = [
        {"family": family, "corpus": corpus_label(run["corpus"]), "who": run_label(run),
         "protocol": run.get("protocol", "disjoint"),
         "gain": family_average(run["gap"], family) - family_average(run["base"], family)}
        for run in runs for family in scored_families(run)
    ]
    # A run with a trajectory also answers under the paper's protocol, on its own reported examples.
    ours += [{"family": family, "corpus": corpus_label(run["corpus"]), "who": f"{run['model']} (paper protocol)",
              "protocol": "paper", "gain": run["protocols"]["paper"][family]["delta"]}
             for run in runs if "protocols" in run for family in FAMILIES if family in run["protocols"]["paper"]]
    theirs = []
    # The paper's rows for the families ours scored (all of them when there are no runs of ours yet).
    for family in sorted({row["family"] for row in ours} or set(FAMILIES), key=list(FAMILIES).index):
        paper = pd.read_csv(paper_dir / paper_file(family))
        baselines = paper_baselines(paper)
        for row in paper.itertuples():
            base = baselines[row.model]
            theirs.append({"family": family, "corpus": row.corpora, "who": f"paper OPT-{row.model}",
                           "protocol": "paper", "gain": row.average - base})
    frame = pd.DataFrame(ours + theirs)
    rows = [{"family": family, "corpus": corpus, "who": who, "protocol": protocol,
             **across_runs(group["gain"].to_numpy())}
            for (family, corpus, who, protocol), group in frame.groupby(["family", "corpus", "who", "protocol"],
                                                                         sort=True)]
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


def scored_families(run: dict[str, Any]) -> list[str]:
    """The task families a run scored: a sweep of multiple-choice tasks alone has no dialogue average."""
    return [family for family in FAMILIES if family_average(run["gap"], family) is not None]


def figure_points(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dots and lines of Figure 1 as one long table (`dvc plots` data): one row per run and family scored."""
    points = []
    for run in runs:
        corpus = corpus_label(run["corpus"])
        for family in scored_families(run):
            points.append({"family": family, "series": f"GAP {run_label(run)}", "corpus": corpus,
                           "index": run["source_row"], "epoch": run["epoch"],
                           "score": family_average(run["gap"], family)})
    for model, run in {run["model"]: run for run in runs}.items():
        for family in scored_families(run):
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
    families = [family for family in FAMILIES if family in set(frame["family"])]
    fig, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families), 4.2), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
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


def _interval(values: np.ndarray) -> dict[str, Any]:
    low, high = mean_ci(values) if len(values) > 1 else (float(values[0]), float(values[0]))
    return {"runs": len(values), "mean_gain": float(values.mean()), "mean_gain_ci95_low": low,
            "mean_gain_ci95_high": high}


def trajectory_table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Per model, corpus, family and step: the mean gain over step 0 across runs, with its bootstrap interval
    over runs (runs that took fewer steps leave the later steps)."""
    points = pd.DataFrame([
        {"model": run["model"], "corpus": corpus_label(run["corpus"]), "family": family, "step": entry["step"],
         "gain": entry["delta"]}
        for run in runs if "trajectory" in run for family, entries in run["trajectory"].items() for entry in entries
    ])
    return pd.DataFrame([{"model": m, "corpus": c, "family": f, "step": s, **_interval(group["gain"].to_numpy())}
                         for (m, c, f, s), group in points.groupby(["model", "corpus", "family", "step"])])


def best_of_family(trajectory: list[dict[str, Any]]) -> dict[str, Any]:
    """The family's own best step on its reported examples, the earlier on a tie (step 0, gain 0, when none beats
    the untouched model): the paper's released tables chose so, one step per table, not one per model."""
    return max(trajectory, key=lambda entry: entry["delta"])


def protocol_points(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run and family: the gain the paper's protocol keeps, the family's own best step's (the
    paper's tables), the disjoint one's, the last step's (kept with no selection, as ``criterion: last`` does),
    and the paper's gains minus the disjoint one's and the last step's."""
    rows = []
    for run in runs:
        if "protocols" not in run:
            continue
        protocols = run["protocols"]
        for f in run["selection_bias"]:
            last, own = run["trajectory"][f][-1], best_of_family(run["trajectory"][f])
            disjoint = protocols["disjoint"][f]["delta"]
            rows.append({"model": run["model"], "corpus": corpus_label(run["corpus"]), "index": run["source_row"],
                         "family": f, "paper_step": protocols["paper"]["step"], "per_family_step": own["step"],
                         "disjoint_step": protocols["disjoint"]["step"], "last_step": last["step"],
                         "paper": protocols["paper"][f]["delta"], "per_family": own["delta"], "disjoint": disjoint,
                         "last": last["delta"], "selection_bias": run["selection_bias"][f]["delta"],
                         "selection_bias_per_family": own["delta"] - disjoint,
                         "selection_over_last": protocols["paper"][f]["delta"] - last["delta"]})
    return pd.DataFrame(rows)


def protocol_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per model, corpus and family, under each protocol (paper, per_family, disjoint, last step): the share of
    runs above baseline (Wilson 95%) and the mean gain (bootstrap 95% over runs); and the mean of the paper's gain
    minus the disjoint one's (``selection_bias``; ``selection_bias_per_family`` for the family's own best step)
    and minus the last step's (``selection_over_last``: what choosing among the steps on the reported examples
    adds to a step fixed in advance), each with its interval over runs."""
    rows = []
    for (model, corpus, family), group in points.groupby(["model", "corpus", "family"]):
        for protocol in ("paper", "per_family", "disjoint", "last"):
            rows.append({"model": model, "corpus": corpus, "family": family, "protocol": protocol,
                         **across_runs(group[protocol].to_numpy())})
        for difference in ("selection_bias", "selection_bias_per_family", "selection_over_last"):
            rows.append({"model": model, "corpus": corpus, "family": family, "protocol": difference,
                         **_interval(group[difference].to_numpy())})
    return pd.DataFrame(rows)


def draw_trajectory(table: pd.DataFrame, path: Path, paper: pd.DataFrame) -> None:
    """GAP's gain by step: one row of panels per model, one column per family; in each the mean over runs and
    its 95% interval, one line per corpus, and the paper's mean gain on that corpus (``paper``: rows of
    ``compare_with_paper`` for one OPT size) as a dashed line, the best of its 16 steps on its reported examples."""
    models, families = sorted(set(table["model"])), [f for f in FAMILIES if f in set(table["family"])]
    fig, axes = plt.subplots(len(models), len(families), figsize=(5 * len(families), 3.6 * len(models)),
                             squeeze=False)
    for ax, (model, family) in zip(axes.flat, [(m, f) for m in models for f in families], strict=True):
        for k, (corpus, rows) in enumerate(table[(table["model"] == model) & (table["family"] == family)]
                                           .groupby("corpus")):
            rows = rows.sort_values("step")
            ax.plot(rows["step"], rows["mean_gain"], marker="o", color=f"C{k}",
                    label=f"{corpus} ({rows['runs'].max()} runs)")
            ax.fill_between(rows["step"], rows["mean_gain_ci95_low"], rows["mean_gain_ci95_high"], color=f"C{k}",
                            alpha=0.2)
            for theirs in paper[(paper["family"] == family) & (paper["corpus"] == corpus)].itertuples():
                ax.axhline(theirs.mean_gain, color=f"C{k}", linestyle="--", linewidth=1,
                           label=f"{theirs.who}, {corpus} (best of 16 steps)")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"{model}: {FAMILY_TITLES[family].split(':')[0].lower()}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("ascent step (0: untouched)")
        ax.set_ylabel("gain over step 0\n(mean, 95% interval over runs)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    _save(fig, path)


def draw_protocols(points: pd.DataFrame, path: Path) -> None:
    """Per run and family, the paper protocol's gain against the disjoint protocol's: above the diagonal is the
    part the paper's selection on its reported examples made."""
    families = sorted(points["family"].unique())
    fig, axes = plt.subplots(1, len(families), figsize=(4.6 * len(families), 4.2), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        rows = points[points["family"] == family]
        for k, (model, group) in enumerate(rows.groupby("model")):
            ax.scatter(group["disjoint"], group["paper"], color=f"C{k}", label=model, alpha=0.8)
        span = [min(rows["disjoint"].min(), rows["paper"].min(), 0), max(rows["disjoint"].max(),
                                                                         rows["paper"].max(), 0)]
        ax.plot(span, span, color="grey", linestyle="--", linewidth=1, label="paper = disjoint")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(FAMILY_TITLES[family].split(":")[0])
        ax.set_xlabel("gain of the step kept on the disjoint slice")
        ax.set_ylabel("gain of the step the paper's protocol keeps")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_trajectory_report(runs: list[dict[str, Any]], out_dir: Path, comparison: pd.DataFrame) -> str:
    """With trajectories: trajectory.csv/.tsv/.png and protocols.csv/.tsv/.png; empty text when no run has one.
    The gain-by-step figure shows the paper's smallest model beside ours (``comparison``'s rows for it)."""
    if not any("trajectory" in run for run in runs):
        return ""
    steps = trajectory_table(runs)
    points = protocol_points(runs)
    protocols = protocol_table(points)
    for name, frame in (("trajectory", steps), ("protocols", protocols)):
        write_table(out_dir / f"{name}.csv", frame.to_dict("records"), list(frame.columns), delimiter=",")
    write_table(out_dir / "trajectory.tsv", steps.to_dict("records"), list(steps.columns))
    write_table(out_dir / "protocols.tsv", points.to_dict("records"), list(points.columns))
    draw_trajectory(steps, out_dir / "trajectory.png", comparison[comparison["who"] == PAPER_REFERENCE])
    draw_protocols(points, out_dir / "protocols.png")
    shown = protocols.to_string(index=False, float_format=lambda v: f"{v:+.4f}")
    with_trajectory = sum("protocols" in run for run in runs)
    return f"\n\nUnder each protocol, on the {with_trajectory} runs with a trajectory:\n{shown}"


def write_report(runs: list[dict[str, Any]], out_dir: Path, paper_dir: Path) -> str:
    """Write runs_<family>.csv, figure1.png, figure1.tsv and comparison.csv; return the comparison as text."""
    if not runs:
        return "no finished experiments to collect: `dvc exp show` lists none with metrics/summary/summary.json"
    for family in sorted({family for run in runs for family in scored_families(run)}, key=list(FAMILIES).index):
        table = per_run_table(runs, family)
        write_table(out_dir / f"runs_{family}.csv", table.to_dict("records"), list(table.columns), delimiter=",")
    points = figure_points(runs)
    write_table(out_dir / "figure1.tsv", points, list(points[0]))
    draw_figure(points, out_dir / "figure1.png")
    comparison = compare_with_paper(runs, paper_dir)
    write_table(out_dir / "comparison.csv", comparison.to_dict("records"), list(comparison.columns),
                delimiter=",")
    shown = side_by_side(comparison).to_string(index=False, float_format=lambda v: f"{v:.4f}")
    return (f"{len(runs)} runs collected into {out_dir}\n\nGAP gain over the untouched model, per corpus:\n{shown}"
            + write_trajectory_report(runs, out_dir, comparison))
