"""DVC outputs live in the DVC cache, never in git (they are large and regenerated); git holds no machine's paths."""

import re
import subprocess
from pathlib import Path

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
    assert "models/gap" in outs and "metrics/summary/summary.json" not in outs
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


# A path that names one machine's disk: its home, its temporary files, or where this checkout lies.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:home|root|tmp|Users|mnt|private|var/folders)/")


def machine_paths(text: str, root: Path) -> list[str]:
    """Absolute paths of a machine in ``text``: the usual roots, and the folder that holds ``root``."""
    found = [m.group(0) for m in MACHINE_PATH.finditer(text)]
    return found + [str(root.parent)] * text.count(str(root.parent) + "/")


def test_no_committed_file_holds_an_absolute_path_of_a_machine():
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    offenders = {}
    for name in files:
        path = PROJECT_ROOT / name
        if not path.is_file() or path.suffix in {".png", ".jpg"} or name == "tests/test_repo_hygiene.py":
            continue  # images hold no text; this file holds the examples below
        found = machine_paths(path.read_text(encoding="utf-8", errors="replace"), PROJECT_ROOT)
        if found:
            offenders[name] = sorted(set(found))
    assert offenders == {}


def test_the_path_check_finds_what_it_looks_for():
    root = Path("/srv/checkouts/project")
    assert machine_paths('{"data": "/srv/checkouts/shared/x.jsonl"}', root) == ["/srv/checkouts"]
    assert machine_paths("path: /tmp/pytest-1/x and /home/me/y", root) == ["/tmp/", "/home/"]
    assert machine_paths("under .dvc/tmp/exps/ and ../shared/benchmarks", root) == []
