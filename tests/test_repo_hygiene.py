"""DVC outputs live in the DVC cache, never in git (they are large and regenerated)."""

import subprocess

import pytest

from tests.conftest import PROJECT_ROOT


def test_no_dvc_output_is_tracked_by_git():
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    from dvc.repo import Repo

    tracked = set(subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    # Outputs marked `cache: false` (metrics, plot tables) are meant for git; every other one is DVC's.
    with Repo(str(PROJECT_ROOT)) as repo:
        outs = {out.def_path for out in repo.index.outs if out.use_cache}
    assert "models/gap" in outs and "metrics/eval/base/copa.json" not in outs
    assert not {path for path in tracked for out in outs if path == out or path.startswith(out + "/")}


def test_the_readme_main_command_runs_stages_with_the_project_python():
    # dvc runs each stage's `python ...` through the shell: it must be the environment that has the package.
    readme = (PROJECT_ROOT / "README.md").read_text()
    main = next(line for line in readme.splitlines() if line.startswith("bash scripts/install.sh") and "repro" in line)
    assert main.endswith("&& dvc repro"), main
    setup = main.split("&& dvc repro")[0].removeprefix("bash scripts/install.sh && ")
    if not (PROJECT_ROOT / ".venv/bin/activate").exists():
        pytest.skip("no .venv here")
    probe = subprocess.run(["bash", "-c", f"{setup} && python -c 'import gap_pipeline'"], cwd=PROJECT_ROOT,
                           env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
