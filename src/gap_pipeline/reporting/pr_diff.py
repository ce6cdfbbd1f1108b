"""What a change did to params and metrics, as one Markdown comment for a pull request: DVC's own tables.

`dvc params diff --md` and `dvc metrics diff --md` make the tables; this module only orders them (the run summary
first), adds a heading, and says in one line when nothing moved. The marker on the first line lets the workflow
find and update its own comment on later pushes.

    python -m gap_pipeline.reporting.pr_diff --base origin/main --head HEAD > diff.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MARKER = "<!-- gap-pipeline metrics diff -->"
SUMMARY = "metrics/summary/summary.json"


def dvc(repo: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


def changed_files(repo: Path, kind: str, base: str, head: str) -> list[str]:
    """Params or metrics files (``kind``) with a changed value, the run summary first."""
    changed = json.loads(dvc(repo, kind, "diff", base, head, "--json") or "{}")
    return sorted((path for path, diff in changed.items() if diff), key=lambda path: (path != SUMMARY, path))


def render(repo: Path, base: str, head: str) -> str:
    """The comment body: DVC's params table, then one metrics table per changed file, or a line for each."""
    params = changed_files(repo, "params", base, head)
    files = changed_files(repo, "metrics", base, head)
    lines = [MARKER, f"### GAP pipeline: `{head}` against `{base}`", "", "**Params**", "",
             dvc(repo, "params", "diff", base, head, "--md") if params else "No param changed.", "",
             "**Metrics**", ""]
    if not files:
        lines.append("No metric changed: no score, loss or kept step moved.")
    for path in files:
        lines += [f"`{path}`", "", dvc(repo, "metrics", "diff", base, head, "--md", "--targets", path), ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against, e.g. origin/main")
    parser.add_argument("--head", default="HEAD", help="git revision with the change")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the project's root")
    args = parser.parse_args()
    print(render(args.repo, args.base, args.head), end="")


if __name__ == "__main__":
    main()
