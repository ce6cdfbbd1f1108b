"""The package's layers, and dvc.yaml's deps and params, checked against what the code really imports and reads.

DVC reruns a stage only when one of its declared deps or params changes, so a module a stage imports but does
not declare, or a key it reads but does not declare, silently leaves stale outputs in the cache. These tests
derive both from the code instead of trusting a hand-kept list, and show that each check can fail.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from gap_pipeline.core.stage import TRACE_ENV
from tests.conftest import PROJECT_ROOT, StageDir

PACKAGE = "gap_pipeline"
SRC = PROJECT_ROOT / "src"
REFERENCE = "gemma3-270m"  # a packaged model: the reference stages' instance in pipeline_stages()
# What each part of the package may import (besides itself): the layers, bottom to top.
ALLOWED_IMPORTS = {
    "core": set(),
    "models": {"core"},
    "corpora": {"core"},
    "task_data": {"core"},
    "scoring": {"core", "models"},
    "gap": {"core", "models", "scoring"},
    "reporting": {"core"},
    "sweep": {"core", "reporting"},
}


# ----- imports point one way ------------------------------------------------------------------------------
def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path) -> dict[str, set[str]]:
    """Every project module and the project modules it imports (at the top or inside a function)."""
    files = {module_name(p, src): p for p in (src / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import module` imports the module; `from module import name` the module itself.
                targets.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                               for a in node.names)
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def part_of(module: str) -> str | None:
    """The layer a module belongs to (None for the package's own ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    violations = []
    for module, targets in sorted(graph.items()):
        source = part_of(module)
        for target in sorted(targets):
            aim = part_of(target)
            if source and aim and aim != source and aim not in ALLOWED_IMPORTS[source]:
                violations.append(f"{module} imports {target} ({source} may import {sorted(ALLOWED_IMPORTS[source])})")
    return violations


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle found by a depth-first walk, as the list of modules around it."""
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_every_module_belongs_to_a_layer():
    assert {part_of(m) for m in import_graph(SRC)} - {None} == set(ALLOWED_IMPORTS)


def test_imports_point_down_the_layers_and_form_no_cycle():
    graph = import_graph(SRC)
    assert layer_violations(graph) == []
    assert import_cycles(graph) == []


def _copy_of_the_package(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(SRC / PACKAGE, src / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def test_the_layer_check_catches_an_upward_import_and_a_cycle(tmp_path):
    src = _copy_of_the_package(tmp_path)
    io = src / PACKAGE / "core" / "io.py"
    io.write_text(io.read_text() + "\nfrom gap_pipeline.gap.ascent import gradient_ascent  # noqa\n")
    graph = import_graph(src)
    assert layer_violations(graph) == [
        "gap_pipeline.core.io imports gap_pipeline.gap.ascent (core may import [])"
    ]
    # gap.ascent -> core.errors is fine alone; core.errors -> gap.ascent closes a loop.
    errors = src / PACKAGE / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport gap_pipeline.gap.ascent  # noqa\n")
    assert ["gap_pipeline.core.errors", "gap_pipeline.gap.ascent", "gap_pipeline.core.errors"] in import_cycles(
        import_graph(src))


# ----- dvc.yaml's deps cover the code each stage loads ----------------------------------------------------
@functools.cache
def pipeline_stages() -> dict[str, dict]:
    """Every stage of dvc.yaml as DVC resolves it: its script, its code deps and its params keys.

    Resolved with one reference model (``REFERENCE``) whatever params.yaml lists, in a copy of dvc.yaml and
    params.yaml, so that the reference stages, absent from a default run, are checked like every other stage."""
    stages = {}
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["reference"]["models"] = [REFERENCE]
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(PROJECT_ROOT / "dvc.yaml", folder)
        Path(folder, "params.yaml").write_text(yaml.safe_dump(params))
        with Repo.init(folder, no_scm=True) as repo:
            for stage in repo.index.stages:
                keys = [key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in dep.params]
                paths = [dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)]
                script = re.search(r"stages/\w+\.py", stage.cmd).group(0)
                stages[stage.name] = {"cmd": stage.cmd, "script": script, "params": keys, "paths": paths}
    return stages


def covered(path: str, deps: Iterable[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def code_coverage_problems(modules: Iterable[str], deps: list[str]) -> list[str]:
    """Loaded modules no dep covers, and code deps that cover no loaded module (stale or too wide)."""
    modules = [f"src/{m}" for m in modules]
    missing = [f"loads {m}, not in deps" for m in modules if not covered(m, deps)]
    code_deps = [d for d in deps if d.startswith(f"src/{PACKAGE}")]
    unused = [f"depends on {d}, loads nothing under it" for d in code_deps if not covered_by_any(d, modules)]
    return missing + unused


def covered_by_any(dep: str, modules: list[str]) -> bool:
    return any(covered(m, [dep]) for m in modules)


_IMPORT_PROBE = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="imports_only")  # runs the imports; main() only under __main__
from gap_pipeline.core.stage import loaded_project_modules
print(json.dumps(loaded_project_modules()))
"""


def imports_of(script: str) -> list[str]:
    """Project modules a fresh interpreter loads when it imports ``script``, as the stage's cmd runs it."""
    env = os.environ | {"PYTHONPATH": "src"}
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, script], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_every_stage_depends_on_its_script_and_the_code_its_imports_load(traces):
    """What a traced run of the script loaded: its imports, and those inside the functions it ran."""
    stages = pipeline_stages()
    loaded: dict[str, set[str]] = {}
    for name, run in TRACED_STAGES.items():
        loaded.setdefault(stages[name]["script"], set()).update(traces[run]["modules"])
    assert set(loaded) == {s["script"] for s in stages.values()}  # every script is traced
    problems = {name: code_coverage_problems(loaded[s["script"]], s["paths"]) for name, s in stages.items()}
    problems |= {name: [f"no dep on its script {s['script']}"] for name, s in stages.items()
                 if s["script"] not in s["paths"]}
    assert {name: p for name, p in problems.items() if p} == {}


def test_the_deps_check_catches_a_module_left_out_and_a_stale_dep():
    stages = pipeline_stages()
    modules = imports_of(stages["aggregate"]["script"])
    deps = [d for d in stages["aggregate"]["paths"] if d != "src/gap_pipeline/core"] + ["src/gap_pipeline/gap"]
    problems = code_coverage_problems(modules, deps)
    assert "loads src/gap_pipeline/core/io.py, not in deps" in problems
    assert "depends on src/gap_pipeline/gap, loads nothing under it" in problems


def test_stages_run_this_checkouts_package(tmp_path):
    """Queued experiments run in copies of the repo; the editable install points at the workspace's package."""
    config = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    runner = next(v["python"] for v in config["vars"] if "python" in v)
    assert runner == "PYTHONPATH=src python"
    assert all(s["cmd"].startswith(f"{runner} stages/") for s in pipeline_stages().values())
    src = _copy_of_the_package(tmp_path)
    probe = subprocess.run(["bash", "-c", f"{runner} -c 'import gap_pipeline; print(gap_pipeline.__file__)'"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(src)


# ----- dvc.yaml's params cover the keys each stage reads --------------------------------------------------
def params_problems(read: Iterable[str], declared: list[str]) -> list[str]:
    """Keys read that no declared param covers, and declared params of which nothing is read."""
    read = sorted(read)
    missing = [f"reads {key}, not declared" for key in read if not covered_key(key, declared)]
    unused = [f"declares {key}, reads nothing of it" for key in declared
              if not any(covered_key(r, [key]) for r in read)]
    return missing + unused


def covered_key(key: str, declared: Iterable[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def _trace(stage_dir: StageDir, script: str, *args: str) -> dict:
    trace = stage_dir.root.parent / f"trace-{script}-{len(list(stage_dir.root.parent.glob('trace-*')))}.json"
    result = stage_dir.run(script, *args, env={TRACE_ENV: str(trace)})
    assert result.returncode == 0, result.stderr
    return json.loads(trace.read_text())


@pytest.fixture(scope="module")
def traces(tmp_path_factory, tiny_model_factory, small_benchmarks) -> dict[str, dict]:
    """Every stage script run once on a tiny configuration, with what it read and loaded."""
    root = tmp_path_factory.mktemp("traces")
    tiny = tiny_model_factory(root / "tiny")
    stage_dir = StageDir(root / "work", yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text()))
    stage_dir.root.mkdir()
    stage_dir.set("data.benchmarks", str(small_benchmarks))
    stage_dir.set("model.name", str(tiny))
    stage_dir.set("corpora", {"github": stage_dir.params["corpora"]["github"] | {"n": 3}})  # the one imported
    stage_dir.set("gap.steps", 1)
    stage_dir.set("gap.trajectory", True)
    stage_dir.set("gap.max_length", 32)
    stage_dir.set("eval.tasks", {"copa": {"split": "validation", "limit": 2},
                                 "wizard_of_wikipedia": {"split": "validation", "limit": 2}})
    runs = {
        "import_benchmarks": ("import_benchmarks", "--out", "data/benchmarks"),
        "import_corpus": ("import_corpus", "--name", "github", "--out", "data/sources/github.jsonl"),
        "check_params": ("check_params", "--benchmarks", "data/benchmarks", "--sources", "data/sources",
                         "--out", "data/params_checked.txt"),
        "prepare_model": ("prepare_model", "--out", "models/base"),
        "prepare_reference": ("prepare_model", "--reference", str(tiny), "--out", "models/reference/tiny"),
        "sample_corpus": ("sample_corpus", "--name", "github", "--corpus", "data/sources/github.jsonl",
                          "--out", "data/corpora/github.jsonl"),
        "gap": ("gap", "--model", "models/base", "--corpus", "data/corpora/github.jsonl", "--benchmarks",
                "data/benchmarks", "--out", "models/gap", "--metrics", "metrics/gap",
                "--timing", "data/gap_timing.json", "--run-info", "models/gap_run.json"),
        # On, so that it reads and loads all it can (off, it reads gap.trajectory alone and loads no model).
        "trajectory": ("trajectory", "--model", "models/base", "--corpus", "data/corpora/github.jsonl",
                       "--benchmarks", "data/benchmarks", "--out", "data/trajectory"),
    }
    found = {name: _trace(stage_dir, *run) for name, run in runs.items()}
    for task in ("copa", "wizard_of_wikipedia"):  # a choice task and a dialogue task load different code
        found[f"evaluate-{task}"] = _trace(
            stage_dir, "evaluate", "--model", "models/base", "--task", task, "--benchmarks", "data/benchmarks",
            "--scores", f"metrics/eval/base/{task}.json", "--predictions", f"data/predictions/base/{task}.jsonl",
            "--run-info", f"data/predictions/base/{task}.run.json")
    # The GAP model's evaluations run the same script on the same kind of folder: the base model's outputs stand
    # in for them, for the aggregate to read.
    for folder in ("metrics/eval", "data/predictions"):
        shutil.copytree(stage_dir.root / folder / "base", stage_dir.root / folder / "gap")
    found["aggregate"] = _trace(stage_dir, "aggregate", "--scores", "metrics/eval", "--predictions",
                                "data/predictions", "--corpus",
                                "data/corpora/github.jsonl", "--train", "metrics/gap/train.json",
                                "--trajectory", "data/trajectory", "--out", "metrics/summary")
    return found


# Which run stands for which stage of dvc.yaml (foreach and matrix stages: one instance each).
TRACED_STAGES = {
    "import_benchmarks": "import_benchmarks",
    "import_corpus@github": "import_corpus",
    "check_params": "check_params",
    "prepare_model": "prepare_model",
    f"prepare_reference@{REFERENCE}": "prepare_reference",
    "sample_corpus@github": "sample_corpus",
    "gap": "gap",
    "trajectory": "trajectory",
    "evaluate@base-copa": "evaluate-copa",
    "evaluate@gap-copa": "evaluate-copa",
    "evaluate@base-wizard_of_wikipedia": "evaluate-wizard_of_wikipedia",
    "evaluate@gap-wizard_of_wikipedia": "evaluate-wizard_of_wikipedia",
    f"evaluate_reference@{REFERENCE}-copa": "evaluate-copa",
    "aggregate": "aggregate",
}


def test_every_stage_declares_exactly_the_params_it_reads(traces):
    stages = pipeline_stages()
    problems = {name: params_problems(traces[run]["params"], stages[name]["params"])
                for name, run in TRACED_STAGES.items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_modules_loaded_while_running_are_covered_too(traces):
    """Imports inside functions load only when the stage runs: the import probe alone would miss them."""
    stages = pipeline_stages()
    problems = {name: [p for p in code_coverage_problems(traces[run]["modules"], stages[name]["paths"])
                       if p.startswith("loads")]
                for name, run in TRACED_STAGES.items()}
    assert {name: p for name, p in problems.items() if p} == {}


def test_the_params_check_catches_an_undeclared_key_and_an_unread_one(traces):
    declared = [key for key in pipeline_stages()["gap"]["params"] if key != "eval.model_class"] + ["eval.seed"]
    problems = params_problems(traces["gap"]["params"], declared)
    assert problems == ["reads eval.model_class, not declared", "declares eval.seed, reads nothing of it"]
