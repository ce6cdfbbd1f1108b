"""Render what a change did to params and metrics as one Markdown comment for a pull request.

DVC computes the diffs (`dvc params diff`, `dvc metrics diff`, both as JSON); this module only lays them out:
changed params first, then every changed metric with its base value, new value and change, the summary file
on top. The marker on the first line lets the workflow find and update its own comment on later pushes.

    python -m gap_pipeline.reporting.pr_diff --base origin/main --head HEAD > diff.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- gap-pipeline metrics diff -->"
SUMMARY = "metrics/summary/summary.json"


def dvc_diff(kind: str, base: str, head: str, repo: Path) -> dict[str, dict[str, Any]]:
    """`dvc <kind> diff base head --json` as a dict: {file: {key: {"old", "new", "diff"}}}."""
    result = subprocess.run([sys.executable, "-m", "dvc", kind, "diff", base, head, "--json"], cwd=repo,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout or "{}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _change(entry: dict[str, Any]) -> str:
    diff = entry.get("diff")
    if isinstance(diff, (int, float)) and not isinstance(diff, bool):
        return f"{diff:+.4g}"
    return _cell(diff)


def _rows(diffs: dict[str, dict[str, Any]]) -> list[str]:
    files = sorted(diffs, key=lambda f: (f != SUMMARY, f))
    return [
        f"| `{path}` | `{key}` | {_cell(entry.get('old'))} | {_cell(entry.get('new'))} | {_change(entry)} |"
        for path in files for key, entry in sorted(diffs[path].items())
    ]


def render(params: dict[str, dict[str, Any]], metrics: dict[str, dict[str, Any]], base: str, head: str) -> str:
    """The comment body: a params table and a metrics table, or a line saying nothing changed."""
    lines = [MARKER, f"### GAP pipeline: `{head}` against `{base}`", ""]
    for title, diffs in (("Params", params), ("Metrics", metrics)):
        rows = _rows(diffs)
        lines.append(f"**{title}**" + ("" if rows else ": no change"))
        if rows:
            lines += ["", "| file | key | base | head | change |", "|---|---|---|---|---|", *rows]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against, e.g. origin/main")
    parser.add_argument("--head", default="HEAD", help="git revision with the change")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the project's root")
    args = parser.parse_args()
    params = dvc_diff("params", args.base, args.head, args.repo)
    metrics = dvc_diff("metrics", args.base, args.head, args.repo)
    print(render(params, metrics, args.base, args.head))


if __name__ == "__main__":
    main()
