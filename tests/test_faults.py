"""Fault injection at the stage level: each stage script run as DVC runs it, fed bad input on purpose.

Every case checks what the user sees (exit code 2 and one line naming the bad value and the fix) and what is
left behind (no output, no half-written temporary file), because DVC caches whatever a stage leaves.
"""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from safetensors.torch import load_file

from tests.conftest import StageDir

TIMING_KEYS = {"seconds_per_step", "tokens_per_second", "total_seconds", "seconds"}


def _fails_cleanly(result: subprocess.CompletedProcess, stage_dir: StageDir, *expected: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines[-1]) < 500, "one readable line, not a dump of the params"
    for text in expected:
        assert text in lines[-1], lines[-1]
    assert stage_dir.leftovers() == []
    return lines[-1]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("gap.steps", -1, ["gap.steps = -1", "greater than or equal to 0"]),
        ("gap.lr", 0, ["gap.lr = 0", "greater than 0"]),
        ("gap.max_length", 1, ["gap.max_length = 1", "greater than or equal to 2"]),
        ("gap.steps", "ten", ["gap.steps = 'ten'", "valid integer"]),
        ("gap.corpus", "gihtub", ["gap.corpus = 'gihtub' is not a corpus", "allowed: ['github', 'pile_cc', 'tdec']"]),
        ("eval.tasks.boolq", {"split": "validation", "limit": 4}, ["unknown task(s) ['boolq']", "allowed: ['piqa'"]),
        ("runtime.device", "tpu", ["runtime.device = 'tpu'", "pattern"]),
        ("gap.select.tasks", ["copa"], ["criterion = 'both' needs a dialogue task in gap.select.tasks"]),
        ("gap.select.examples", 0, ["gap.select.examples = 0", "use criterion 'last' to skip selection"]),
        ("gap.select.tasks", ["copa", "boolq"], ["gap.select.tasks has unknown task(s) ['boolq']"]),
    ],
)
def test_a_bad_param_stops_every_stage_before_it_writes(stage_dir, key, value, expected):
    stage_dir.set(key, value)
    result = stage_dir.run("sample_corpus", "--name", "github", "--out", "data/corpora/github.jsonl")
    _fails_cleanly(result, stage_dir, "params.yaml: ", *expected)


def test_n_larger_than_the_corpus_names_its_size(stage_dir):
    stage_dir.set("corpora.tdec.n", 10**6)
    result = stage_dir.run("sample_corpus", "--name", "tdec", "--out", "data/corpora/tdec.jsonl")
    _fails_cleanly(result, stage_dir, "corpora.tdec.n = 1000000 but the corpus holds only", "lower n")


def test_an_unknown_model_name_lists_every_kind_tried(stage_dir):
    stage_dir.set("model.name", "smolm2-135m")
    result = stage_dir.run("prepare_model", "--out", "models/base")
    _fails_cleanly(result, stage_dir, "'smolm2-135m'", "packaged model ['gemma3-270m', 'smollm2-135m']",
                   "local directory", "hub id")


def test_an_unreachable_hub_model_says_where_it_looked_and_how_to_go_local(stage_dir):
    stage_dir.set("model.name", "no-one/no-such-model")
    result = stage_dir.run("prepare_model", "--out", "models/base")
    _fails_cleanly(result, stage_dir, "tried the hub and the local cache under",
                   "set model.name to that local directory")


def test_an_unreachable_hub_corpus_says_where_it_looked_and_how_to_go_local(stage_dir):
    stage_dir.set("hub_corpora", {"c4": {"dataset": "allenai/c4", "name": "en", "split": "validation",
                                         "revision": None, "n": 3, "seed": 0, "text_field": "text",
                                         "id_field": None}})
    result = stage_dir.run("sample_corpus", "--hub", "--name", "c4", "--out", "data/corpora/c4.jsonl")
    _fails_cleanly(result, stage_dir, "hub corpus 'allenai/c4'", "tried the hub and the datasets cache",
                   "list it under `corpora` with `source:`")


def test_an_unreachable_hub_benchmark_says_how_to_use_the_local_mirror(stage_dir, tiny_base):
    stage_dir.set("eval.source", "hub")
    result = stage_dir.run("evaluate", "--model", str(tiny_base), "--task", "copa",
                           "--metrics", "metrics/copa.json", "--predictions", "data/copa.jsonl")
    _fails_cleanly(result, stage_dir, "task 'copa'", "tried the hub and the datasets cache",
                   "set eval.source: local")


def test_an_empty_text_is_reported_with_its_doc_id(stage_dir, tiny_base):
    corpus = stage_dir.write_corpus([{"doc_id": "pile-0042", "source_row": 7, "text": ""}])
    _fails_cleanly(stage_dir.gap(tiny_base, corpus), stage_dir,
                   "doc_id='pile-0042' tokenizes to 0 token(s)", "pick another gap.index")


def test_a_nan_loss_keeps_the_last_finite_step_writes_no_nan_and_reports_it(stage_dir, tiny_base):
    corpus = stage_dir.write_corpus([{"doc_id": 1, "text": " ".join(f"w{i % 100 + 1}" for i in range(40))}])
    # An absurd learning rate overflows the weights on the first update: the next loss is NaN or inf.
    stage_dir.set("gap.lr", 1.0e30)
    stage_dir.set("gap.loss_ceiling", None)
    stage_dir.set("gap.steps", 4)
    result = stage_dir.gap(tiny_base, corpus)
    assert result.returncode == 0, result.stderr
    assert "warning: the loss at step 1 was" in result.stderr
    train = json.loads((stage_dir.root / "metrics/gap/train.json").read_text())
    assert train["diverged"] is True and train["diverged_step"] == 1 and train["steps"] == 0
    assert train["diverged_loss"] in ("nan", "inf")
    assert (stage_dir.root / "metrics/gap/steps.tsv").read_text().splitlines()[1:] == [
        f"0\t{train['initial_loss']}\t\t"
    ]
    weights = load_file(stage_dir.root / "models/gap/model.safetensors")
    assert all(bool(t.isfinite().all()) for t in weights.values())
    base = load_file(tiny_base / "model.safetensors")
    assert all(bool((weights[name] == base[name]).all()) for name in base)  # step 0 kept: the base model
    # The per-run tables name the step that was kept, not the gap.steps asked for.
    for model in ("base", "gap"):
        record = {"task": "copa", "metrics": {"acc": 0.5}}
        (stage_dir.root / f"metrics/eval/{model}").mkdir(parents=True)
        (stage_dir.root / f"metrics/eval/{model}/copa.json").write_text(json.dumps(record))
    result = stage_dir.run("aggregate", "--scores", "metrics/eval", "--corpus", corpus,
                           "--train", "metrics/gap/train.json", "--out", "metrics/summary")
    assert result.returncode == 0, result.stderr
    rows = (stage_dir.root / "metrics/summary/runs_classification.csv").read_text().splitlines()
    assert [row.split(",")[2] for row in rows] == ["epoch", "0", "0"]


def test_two_runs_with_the_same_params_give_identical_results(stage_dir, tiny_base):
    corpus = stage_dir.write_corpus([{"doc_id": 1, "text": " ".join(f"w{i % 50 + 1}" for i in range(60))}])
    stage_dir.set("gap.steps", 3)
    runs = []
    for run in ("a", "b"):
        result = stage_dir.gap(tiny_base, corpus, out=f"models/gap_{run}", metrics=f"metrics/gap_{run}")
        assert result.returncode == 0, result.stderr
        train = json.loads((stage_dir.root / f"metrics/gap_{run}/train.json").read_text())
        runs.append(({k: v for k, v in train.items() if k not in TIMING_KEYS},
                     (stage_dir.root / f"models/gap_{run}/model.safetensors").read_bytes()))
    assert runs[0] == runs[1]
    assert runs[0][0]["steps_run"] == 3 and 0 <= runs[0][0]["steps"] <= 3


def test_two_evaluations_with_the_same_params_give_identical_scores(stage_dir, tiny_base):
    stage_dir.set("eval.tasks", {"copa": {"split": "validation", "limit": 6}})
    records = []
    for run in ("a", "b"):
        result = stage_dir.run("evaluate", "--model", str(tiny_base), "--task", "copa",
                               "--metrics", f"metrics/{run}.json", "--predictions", f"data/{run}.jsonl")
        assert result.returncode == 0, result.stderr
        record = json.loads((stage_dir.root / f"metrics/{run}.json").read_text())
        predictions = (stage_dir.root / f"data/{run}.jsonl").read_text()
        records.append(({k: v for k, v in record.items() if k not in TIMING_KEYS}, predictions))
    assert records[0] == records[1]
    assert records[0][0]["examples"] == 6 and not math.isnan(records[0][0]["metrics"]["acc"])
