"""Write DVC's HTML template for `dvc plots show` with vega, vega-lite and vega-embed inlined, so the page draws
offline (DVC's own page loads them from a CDN and stays blank without a network).

    python scripts/build_plots_page.py [--out .dvc/plots/offline_page.html]

The three libraries come from their npm packages (`npm pack`, the versions pinned below: the majors dvc-render's
page uses); `.dvc/config` names the result as `plots.html_template`. scripts/install.sh runs this.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {  # npm package -> the minified browser build inside it
    "vega@5.33.0": "package/build/vega.min.js",
    "vega-lite@5.23.0": "package/build/vega-lite.min.js",
    "vega-embed@6.29.0": "package/build/vega-embed.min.js",
}
PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>GAP pipeline: plots</title>
    <!-- {libraries}: inlined from npm by scripts/build_plots_page.py, so the page needs no network. -->
{inlined}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def fetch(package: str, member: str, into: Path) -> str:
    """The text of ``member`` inside the npm tarball of ``package``."""
    if shutil.which("npm") is None:
        sys.exit("error: npm is needed to fetch vega for the offline plots page; install Node.js (npm), or remove "
                 "plots.html_template from .dvc/config to use DVC's online page")
    result = subprocess.run(["npm", "pack", package, "--silent"], cwd=into, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: `npm pack {package}` failed: {result.stderr.strip().splitlines()[-1:]}")
    with tarfile.open(into / result.stdout.strip().splitlines()[-1]) as archive:
        return archive.extractfile(member).read().decode("utf-8")


def build(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scripts = {package: fetch(package, member, Path(scratch)) for package, member in PACKAGES.items()}
    # dvc-render fills {scripts}, {plot_divs} and {refresh_tag} by plain text replacement: the libraries must hold
    # none of them, and no "</script>" that would end their inline element early.
    for package, script in scripts.items():
        if any(f"{{{name}}}" in script for name in ("scripts", "plot_divs", "refresh_tag")):
            sys.exit(f"error: {package} holds a DVC template placeholder; it cannot be inlined as it is")
    safe = {package: script.replace("</script", "<\\/script") for package, script in scripts.items()}
    inlined = "\n".join(f"    <script>/* {package} */\n{script}\n    </script>" for package, script in safe.items())
    page = PAGE.format(libraries=", ".join(PACKAGES), inlined=inlined, refresh_tag="{refresh_tag}",
                       plot_divs="{plot_divs}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} ({len(page) // 1024} KiB: {', '.join(PACKAGES)} inlined)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".dvc/plots/offline_page.html"))
    build(parser.parse_args().out)
