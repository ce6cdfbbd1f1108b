"""The pull-request comment, rendered from DVC's own diffs between two real commits of a tiny DVC project."""

import os
import subprocess
import sys
import textwrap

from gap_pipeline.reporting.pr_diff import MARKER, render

ENV = os.environ | {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                    "GIT_COMMITTER_EMAIL": "t@example.com", "DVC_NO_ANALYTICS": "1",
                    # The stage runs `python`: make it this interpreter, which has PyYAML.
                    "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}


def _run(repo, *args):
    subprocess.run(args, cwd=repo, env=ENV, check=True, capture_output=True, text=True)


def _commit_run(repo, steps: int, message: str) -> None:
    (repo / "params.yaml").write_text(f"gap:\n  steps: {steps}\n  lr: 5.0e-5\n")
    _run(repo, sys.executable, "-m", "dvc", "repro", "-q")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", message)


def test_a_param_change_renders_as_params_and_metrics_tables(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    _run(repo, "git", "init", "-q", "-b", "main")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    (repo / "train.py").write_text(textwrap.dedent("""
        import json, os, yaml
        steps = yaml.safe_load(open("params.yaml"))["gap"]["steps"]
        os.makedirs("metrics", exist_ok=True)
        json.dump({"steps": steps, "final_loss": 0.5 + steps}, open("metrics/train.json", "w"))
    """))
    (repo / "dvc.yaml").write_text(textwrap.dedent("""
        stages:
          train:
            cmd: python train.py
            deps: [train.py]
            params: [gap.steps]
            metrics:
              - metrics/train.json: {cache: false}
    """))
    _commit_run(repo, 3, "three steps")
    _commit_run(repo, 5, "five steps")

    body = render(repo, "HEAD~1", "HEAD")
    lines = body.splitlines()
    assert lines[0] == MARKER
    # DVC's own Markdown tables: params, then each changed metrics file.
    assert any(line.startswith("| params.yaml") and "gap.steps" in line and "| 3 " in line and "| 5 " in line
               for line in lines), body
    assert any("final_loss" in line and "3.5" in line and "5.5" in line for line in lines), body
    assert not any("gap.lr" in line for line in lines)  # unchanged params stay out

    _run(repo, "git", "commit", "-q", "--allow-empty", "-m", "no change")
    body = render(repo, "HEAD~1", "HEAD")
    assert "No param changed." in body and "No metric changed: no score, loss or kept step moved." in body
