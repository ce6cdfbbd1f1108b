"""`dvc plots show` draws this project's plots offline, as a user sees them: in a real browser, with no network.

DVC's own page loads vega from a CDN and stays blank offline; the project's template (.dvc/config's
plots.html_template, built by scripts/build_plots_page.py) inlines the libraries. Debian's chromium takes the
screenshots; the test installs it when it is missing.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from tests.conftest import PROJECT_ROOT  # noqa: E402

TEMPLATE = PROJECT_ROOT / ".dvc/plots/offline_page.html"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=True, capture_output=True)
        found = shutil.which("chromium")
    assert found, "Debian's chromium could not be installed"
    return found


def screenshot(chromium: str, page: Path, out: Path) -> np.ndarray:
    """The page as headless Chromium draws it (network off: only what the page holds can load)."""
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--proxy-server=127.0.0.1:9", "--window-size=1100,1400", "--virtual-time-budget=10000",
                    f"--screenshot={out}", page.as_uri()], check=True, capture_output=True, timeout=120)
    return matplotlib.image.imread(out)


def drawn_charts(chromium: str, page: Path) -> tuple[int, int]:
    """How many charts the page asks vega-embed for, and how many it drew (a canvas of non-zero size each)."""
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
                          "--virtual-time-budget=10000", "--dump-dom", page.as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    asked = page.read_text().count("vegaEmbed('#")
    drawn = len(re.findall(r'<canvas width="[1-9]\d*" height="[1-9]\d*"', dom))
    return asked, drawn


def drawn_share(pixels: np.ndarray) -> float:
    """The share of pixels that are not (near) white: 0 for a blank page."""
    return float((pixels[..., :3].min(axis=-1) < 0.9).mean())


def plot_id(entry: str | dict) -> str:
    """A top-level plot's id: a file (an image) or a title."""
    return entry if isinstance(entry, str) else next(iter(entry))


def defined_charts(dvc_yaml: dict) -> int:
    """The vega charts dvc.yaml defines: one per top-level plot that is not an image, one per stage plot output."""
    stage_plots = [out for stage in dvc_yaml["stages"].values() for out in stage.get("plots", [])]
    return len([p for p in dvc_yaml["plots"] if not plot_id(p).endswith(".png")]) + len(stage_plots)


def chart_specs(page: Path) -> dict[str, dict]:
    """Each chart's vega-lite spec as DVC wrote it into the page, by the id it is embedded under."""
    html = page.read_text()
    found = re.findall(r"var spec = (\{.*?\});\s*vegaEmbed\('#([^']+)'", html, flags=re.S)
    return {chart_id: json.loads(spec) for spec, chart_id in found}


def _encodings(spec: dict) -> list[dict]:
    """The encoding blocks of a spec, its layers and its facet's inner spec."""
    blocks = [spec.get("encoding", {})]
    for inner in [*spec.get("layer", []), *([spec["spec"]] if "spec" in spec else [])]:
        blocks += _encodings(inner)
    return blocks


def measures(spec: dict) -> set[tuple[str, tuple]]:
    """What a chart shows, as (column, its values): its quantitative y columns (a line), else its quantitative x
    columns (a bar or an interval). DVC's multi-column charts name each point's column in ``field``."""
    fields: dict[str, set[str]] = {"x": set(), "y": set()}
    for block in _encodings(spec):
        for axis, channels in (("x", ("x", "x2")), ("y", ("y", "y2"))):
            for channel in channels:
                encoded = block.get(channel, {})
                if "field" in encoded and encoded.get("type", "quantitative") == "quantitative":
                    fields[axis].add(encoded["field"])
    points = spec["data"]["values"]
    shown = set()
    for column in fields["y"] or fields["x"]:
        if column == "dvc_inferred_y_value":
            for name in {p["field"] for p in points}:
                shown.add((name, tuple(p[column] for p in points if p["field"] == name)))
        else:
            shown.add((column, tuple(p[column] for p in points)))
    return shown


def _project(root: Path, template: bool) -> Path:
    """A DVC project with this project's dvc.yaml, params and templates, and plot files of the right shape.

    Without the offline template, only the vega plots are kept: an image would draw without any script.
    """
    root.mkdir()
    run = dict(cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], **run)
    shutil.copytree(PROJECT_ROOT / ".dvc/plots", root / ".dvc/plots", dirs_exist_ok=True)
    if template:
        subprocess.run([sys.executable, "-m", "dvc", "config", "plots.html_template", "plots/offline_page.html"],
                       **run)
    shutil.copy(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    dvc_yaml = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    images = [plot_id(p) for p in dvc_yaml["plots"] if plot_id(p).endswith(".png")]
    dvc_yaml["plots"] = [p for p in dvc_yaml["plots"] if template or plot_id(p) not in images]
    (root / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    for folder in ("metrics/gap", "metrics/summary", *{str(Path(image).parent) for image in images}):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "metrics/gap/steps.tsv").write_text(
        "step\tloss\tseconds\ttokens_per_second\n0\t1.2\t\t\n1\t1.9\t2.5\t160\n2\t3.4\t2.4\t170\n")
    (root / "metrics/gap/selection.tsv").write_text(
        "step\tcriterion\tclassification\tdialogue\n0\t0.0\t0.5\t0.10\n1\t0.02\t0.51\t0.11\n2\t-0.01\t0.49\t0.10\n")
    rows = [f"{t}\t{m}\tacc\t{s}" for t in ("copa", "piqa") for m, s in (("base", 0.5), ("gap", 0.55))]
    (root / "metrics/summary/scores.tsv").write_text("task\tmodel\tmetric\tscore\n" + "\n".join(rows) + "\n")
    (root / "metrics/summary/gains.tsv").write_text(
        "family\ttask\tmetric\tgain\tlow\thigh\nclassification\tcopa\tacc\t0.05\t-0.02\t0.12\n"
        "classification\taverage\tacc\t0.05\t-0.02\t0.12\ndialogue\tpersona\tf1\t-0.01\t-0.03\t0.004\n")
    for image in images:
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.scatter([0, 1, 2], [0.5, 0.52, 0.49])
        fig.savefig(root / image)
        plt.close(fig)
    subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "page"], **run)
    return root / "page/index.html"


def test_every_chart_is_drawn_once(tmp_path):
    """A stage plot draws under its file name even when a top-level plot reads it: each file's chart is defined
    once, where it is written, and no two charts on the page show the same column."""
    page = _project(tmp_path / "page", template=False)
    specs = chart_specs(page)
    assert len(specs) == defined_charts(yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text()))
    shown = {chart_id: measures(spec) for chart_id, spec in specs.items()}
    assert all(shown.values()), shown  # every chart shows a column (else the check below could not fail)
    for first, second in itertools.combinations(shown, 2):
        assert not shown[first] & shown[second], (first, second, shown[first] & shown[second])
    # The per-task gains carry their interval: a bar from low to high under each point.
    gains = next(spec for spec in specs.values() if ("low", ("-0.02", "-0.02", "-0.03")) in measures(spec))
    rules = [layer for layer in gains["spec"]["layer"] if layer["encoding"].get("x2", {}).get("field") == "high"]
    assert rules and rules[0]["mark"]["type"] == "rule"


@pytest.mark.skipif(not TEMPLATE.exists(), reason="scripts/install.sh builds the offline page")
def test_the_plots_page_draws_offline_and_dvcs_own_page_does_not(chromium, tmp_path):
    ours = _project(tmp_path / "ours", template=True)
    html = ours.read_text()
    assert "cdn.jsdelivr" not in html.split("<script>/* vega@")[0]  # no library fetched from outside
    for title in ("GAP training loss", "Best-step selection", "Zero-shot score per task", "paired bootstrap 95%",
                  "figure1.png"):
        assert title in html, title
    asked, charts = drawn_charts(chromium, ours)
    assert asked >= 4 and charts == asked  # every chart drew: none broken by its title or its data
    drawn = drawn_share(screenshot(chromium, ours, tmp_path / "ours.png"))
    # DVC's own page, the same plots: its scripts come from a CDN, which this machine cannot reach.
    theirs = _project(tmp_path / "theirs", template=False)
    blank = drawn_share(screenshot(chromium, theirs, tmp_path / "theirs.png"))
    assert blank < 0.01 < drawn, (blank, drawn)
