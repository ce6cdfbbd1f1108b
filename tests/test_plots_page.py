"""`dvc plots show` draws this project's plots offline, as a user sees them: in a real browser, with no network.

DVC's own page loads vega from a CDN and stays blank offline; the project's template (.dvc/config's
plots.html_template, built by scripts/build_plots_page.py) inlines the libraries. Debian's chromium takes the
screenshots; the test installs it when it is missing.
"""

from __future__ import annotations

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


def _project(root: Path, template: bool) -> Path:
    """A DVC project with this project's plot definitions and templates, and plot files of the right shape.

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
    plots = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["plots"]
    plots = [p for p in plots if template or not str(next(iter(p))).endswith(".png")]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    for folder in ("metrics/gap", "metrics/summary", "metrics/sweep"):
        (root / folder).mkdir(parents=True)
    (root / "metrics/gap/steps.tsv").write_text(
        "step\tloss\tseconds\ttokens_per_second\n0\t1.2\t\t\n1\t1.9\t2.5\t160\n2\t3.4\t2.4\t170\n")
    (root / "metrics/gap/selection.tsv").write_text(
        "step\tcriterion\tclassification\tdialogue\n0\t0.0\t0.5\t0.10\n1\t0.02\t0.51\t0.11\n2\t-0.01\t0.49\t0.10\n")
    rows = [f"{t}\t{m}\tacc\t{s}" for t in ("copa", "piqa") for m, s in (("base", 0.5), ("gap", 0.55))]
    (root / "metrics/summary/scores.tsv").write_text("task\tmodel\tmetric\tscore\n" + "\n".join(rows) + "\n")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter([0, 1, 2], [0.5, 0.52, 0.49])
    fig.savefig(root / "metrics/sweep/figure1.png")
    plt.close(fig)
    subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "page"], **run)
    return root / "page/index.html"


@pytest.mark.skipif(not TEMPLATE.exists(), reason="scripts/install.sh builds the offline page")
def test_the_plots_page_draws_offline_and_dvcs_own_page_does_not(chromium, tmp_path):
    ours = _project(tmp_path / "ours", template=True)
    html = ours.read_text()
    assert "cdn.jsdelivr" not in html.split("<script>/* vega@")[0]  # no library fetched from outside
    for title in ("GAP training loss", "Best-step selection", "Zero-shot score per task", "figure1.png"):
        assert title in html, title
    asked, charts = drawn_charts(chromium, ours)
    assert asked >= 4 and charts == asked  # every chart drew: none broken by its title or its data
    drawn = drawn_share(screenshot(chromium, ours, tmp_path / "ours.png"))
    # DVC's own page, the same plots: its scripts come from a CDN, which this machine cannot reach.
    theirs = _project(tmp_path / "theirs", template=False)
    blank = drawn_share(screenshot(chromium, theirs, tmp_path / "theirs.png"))
    assert blank < 0.01 < drawn, (blank, drawn)
