"""DVC outputs live in the DVC cache, never in git (they are large and regenerated)."""

import subprocess

import pytest
import yaml

from tests.conftest import PROJECT_ROOT


def test_no_dvc_output_is_tracked_by_git():
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = set(subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())
    outs = {out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])}
    assert outs, "dvc.lock lists no outputs"
    assert not {path for path in tracked for out in outs if path == out or path.startswith(out + "/")}
