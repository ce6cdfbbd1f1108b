"""The GitHub workflow that posts metric diffs, checked by actionlint (it cannot run here: no GitHub)."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT

ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def lint(*files: Path) -> subprocess.CompletedProcess:
    assert ACTIONLINT, "actionlint comes with the test extra (pyproject.toml)"
    return subprocess.run([ACTIONLINT, "-no-color", *map(str, files)], capture_output=True, text=True)


def test_the_workflows_pass_actionlint():
    workflows = sorted((PROJECT_ROOT / ".github/workflows").glob("*.yml"))
    assert workflows
    result = lint(*workflows)
    assert result.returncode == 0, result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = (PROJECT_ROOT / ".github/workflows/metrics-diff.yml").read_text().replace(
        "github.base_ref", "github.no_such_context", 1)
    (tmp_path / "broken.yml").write_text(broken)
    result = lint(tmp_path / "broken.yml")
    assert result.returncode != 0 and "no_such_context" in result.stdout
