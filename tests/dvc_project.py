"""A throwaway copy of this project in its own git repo, for running real `dvc` commands in tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT, set_dotted, with_shared_data

# What a clean clone has, minus outputs and local state.
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", "cache", "tmp",
    "dvc.lock", "models", "data", "metrics", "tests",
)


class DvcProject:
    def __init__(self, root: Path):
        self.root = root
        self.env = os.environ | {
            # The stages run `python`: make it this interpreter, whose environment has the package.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
            "DVC_NO_ANALYTICS": "1",
        }

    @classmethod
    def create(cls, root: Path, overrides: dict) -> DvcProject:
        shutil.copytree(PROJECT_ROOT, root, ignore=_IGNORE)
        project = cls(root)
        # DVC hashes the corpora all the same wherever they are named from.
        params = with_shared_data(yaml.safe_load((root / "params.yaml").read_text()))
        project.write_params(_merge(params, overrides))
        project.run("git", "init", "-q", "-b", "main")
        project.commit("copy of the project")
        return project

    @classmethod
    def clone(cls, remote: Path, root: Path) -> DvcProject:
        """Another machine's checkout: a fresh `git clone`, nothing of DVC's but what the clone holds."""
        subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(root)], check=True, capture_output=True)
        return cls(root)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def repro(self, *args: str) -> tuple[set[str], set[str]]:
        """Run `dvc repro`; return the stages it ran and the ones it restored from the run-cache."""
        out = self.dvc("repro", *args).stdout
        ran = set(re.findall(r"Running stage '([^']+)'", out))
        restored = set(re.findall(r"Stage '([^']+)' is cached - skipping run", out))
        return ran, restored

    def changed_stages(self) -> set[str]:
        return set(json.loads(self.dvc("status", "--json").stdout))

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def set_param(self, dotted: str, value) -> None:
        params = self.params()
        set_dotted(params, dotted, value)
        self.write_params(params)

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)

    def read_json(self, relative: str) -> dict:
        return json.loads((self.root / relative).read_text())


def _merge(base: dict, overrides: dict) -> dict:
    """Deep-merge `overrides` into `base`, except that a task list replaces the default one outright."""
    for key, value in overrides.items():
        merge = isinstance(value, dict) and isinstance(base.get(key), dict) and key != "tasks"
        base[key] = _merge(base[key], value) if merge else value
    return base
