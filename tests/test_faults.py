"""Fault injection at the stage level: each stage script run as DVC runs it, fed bad input on purpose.

Every case checks what the user sees (exit code 2 and one line naming the bad value and the fix) and what is
left behind (no output, no half-written temporary file), because DVC caches whatever a stage leaves.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from safetensors.torch import load_file

from gap_pipeline.core.errors import DataFormatError
from tests.conftest import SHARED, StageDir

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
    for stage, *args in (("check_params", "--benchmarks", str(SHARED / "benchmarks"), "--sources",
                          str(SHARED / "corpora"), "--out", "data/ok.txt"),
                         ("import_corpus", "--name", "github", "--out", "data/sources/github.jsonl")):
        _fails_cleanly(stage_dir.run(stage, *args), stage_dir, "params.yaml: ", *expected)


def test_n_larger_than_the_corpus_names_its_size(stage_dir):
    stage_dir.set("corpora.tdec.n", 10**6)
    result = stage_dir.run("sample_corpus", "--name", "tdec", "--corpus", str(SHARED / "corpora/tdec.jsonl"),
                           "--out", "data/corpora/tdec.jsonl")
    _fails_cleanly(result, stage_dir, "corpora.tdec.n = 1000000 but the corpus holds only", "lower n")


def test_an_unknown_model_name_lists_every_kind_tried(stage_dir):
    stage_dir.set("model.name", "smolm2-135m")
    result = stage_dir.run("prepare_model", "--out", "models/base")
    _fails_cleanly(result, stage_dir, "'smolm2-135m'", "packaged model ['gemma3-270m', 'smollm2-135m']",
                   "local directory", "hub id")


def test_a_model_that_is_not_a_causal_lm_is_refused_in_one_line(stage_dir):
    from transformers import T5Config, T5ForConditionalGeneration

    local = stage_dir.root.parent / "t5"
    T5ForConditionalGeneration(T5Config(vocab_size=128, d_model=16, d_ff=32, num_layers=1, num_heads=2,
                                        d_kv=8)).save_pretrained(local)
    stage_dir.set("model.name", str(local))
    result = stage_dir.run("prepare_model", "--out", "models/base")
    _fails_cleanly(result, stage_dir, f"model {str(local)!r} is not a causal language model", "'t5' config",
                   "choose a decoder-only model")


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
    result = stage_dir.evaluate(tiny_base, "copa", "copa")
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
        record = {"task": "copa", "metrics": {"acc": 0.5, "acc_stderr": 0.1}, "examples": 4}
        (stage_dir.root / f"metrics/eval/{model}").mkdir(parents=True)
        (stage_dir.root / f"metrics/eval/{model}/copa.json").write_text(json.dumps(record))
        (stage_dir.root / f"data/predictions/{model}").mkdir(parents=True)
        rows = "".join(json.dumps({"doc_id": i, "acc": float(i % 2)}) + "\n" for i in range(4))
        (stage_dir.root / f"data/predictions/{model}/copa.jsonl").write_text(rows)
    (stage_dir.root / "data/trajectory").mkdir()
    (stage_dir.root / "data/trajectory/steps.json").write_text('{"enabled": false}')  # gap.trajectory off
    result = stage_dir.run("aggregate", "--scores", "metrics/eval", "--predictions", "data/predictions",
                           "--corpus", corpus, "--train", "metrics/gap/train.json", "--trajectory",
                           "data/trajectory", "--out", "metrics/summary")
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
        # Metrics hold results only: the rerun's files are byte for byte the same (timings live elsewhere).
        runs.append([(stage_dir.root / f"metrics/gap_{run}/{name}").read_bytes()
                     for name in ("train.json", "selection.tsv")]
                    + [(stage_dir.root / path).read_bytes()
                       for path in (f"models/gap_{run}/model.safetensors", f"models/gap_{run}_run.json")])
    assert runs[0] == runs[1]
    train = json.loads(runs[0][0])
    assert train["steps_run"] == 3 and 0 <= train["steps"] <= 3
    assert not TIMING_KEYS & set(train)
    timing = json.loads((stage_dir.root / "metrics/gap_a-timing.json").read_text())
    assert timing["seconds_per_step"] > 0 and timing["device"] == "cpu"


def test_two_evaluations_with_the_same_params_give_identical_scores(stage_dir, tiny_base):
    stage_dir.set("eval.tasks", {"copa": {"split": "validation", "limit": 6}})
    records = []
    for run in ("a", "b"):
        result = stage_dir.evaluate(tiny_base, "copa", run)
        assert result.returncode == 0, result.stderr
        records.append(((stage_dir.root / f"metrics/{run}.json").read_bytes(),
                        (stage_dir.root / f"data/{run}.jsonl").read_bytes()))
    assert records[0] == records[1]  # byte for byte: the scores file holds no timing
    record = json.loads(records[0][0])
    assert record["examples"] == 6 and not math.isnan(record["metrics"]["acc"]) and not TIMING_KEYS & set(record)
    run_info = json.loads((stage_dir.root / "data/a.run.json").read_text())
    assert run_info["seconds"] > 0 and run_info["split"] == "validation" and run_info["versions"]["lm-eval"]


GOOD_COPA = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 0}
BAD_DATA = {
    "a broken record": ('{"doc_id": 1, "text": "fine"}\n{"doc_id": 2, "text": "cut off\n', ":2: not a JSON record",
                        "fix or remove the line"),
    "text not in UTF-8": (b'{"doc_id": 1, "text": "fine"}\n' + b'{"doc_id": 2, "text": "caf\xe9"}\n',
                          ":2: not valid UTF-8", "save the file as UTF-8"),
    "a missing field": ('{"doc_id": 1, "text": "fine"}\n{"doc_id": 2, "body": "elsewhere"}\n',
                        ":2: no field 'text'", "set corpora.mine.text_field"),
    "an empty text": ('{"doc_id": 1, "text": "fine"}\n{"doc_id": 2, "text": "  "}\n', ":2: field 'text' is empty",
                      "fix the record or remove it"),
    "an empty file": ("", "holds no records", "point the params at a file with data"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_a_malformed_corpus_stops_its_import_with_the_line_and_the_fix(stage_dir, case):
    content, *expected = BAD_DATA[case]
    source = stage_dir.root.parent / "mine.jsonl"
    source.write_bytes(content if isinstance(content, bytes) else content.encode())
    stage_dir.set("corpora.mine", {"source": str(source), "n": 1, "seed": 0, "text_field": "text",
                                   "id_field": "doc_id"})
    result = stage_dir.run("import_corpus", "--name", "mine", "--out", "data/sources/mine.jsonl")
    line = _fails_cleanly(result, stage_dir, *expected)
    assert str(source) in line


def _mirror(stage_dir: StageDir, copa_lines: list[str]) -> str:
    """A benchmark mirror holding copa's validation split and a good Wizard of Wikipedia split."""
    mirror = stage_dir.root.parent / "mirror"
    (mirror / "copa").mkdir(parents=True)
    (mirror / "copa/validation.jsonl").write_text("".join(line + "\n" for line in copa_lines))
    (mirror / "wizard_of_wikipedia").mkdir()
    (mirror / "wizard_of_wikipedia/validation.jsonl").write_text(json.dumps({"text": ["hi", "hello"]}) + "\n")
    stage_dir.set("data.benchmarks", str(mirror))
    return str(mirror)


@pytest.mark.parametrize(("record", "expected"), [
    ({k: v for k, v in GOOD_COPA.items() if k != "choice2"}, ["copa/validation.jsonl:2: no field 'choice2'",
                                                             "fix the record or remove it"]),
    ("not json at all", ["copa/validation.jsonl:2: not a JSON record", "one JSON object per line"]),
    ([1, 2], ["copa/validation.jsonl:2: a JSON list, not an object"]),
])
def test_a_malformed_benchmark_split_stops_the_import_with_the_line_and_the_fix(stage_dir, record, expected):
    line = record if isinstance(record, str) else json.dumps(record)
    _mirror(stage_dir, [json.dumps(GOOD_COPA), line])
    result = stage_dir.run("import_benchmarks", "--out", "data/benchmarks")
    _fails_cleanly(result, stage_dir, *expected)


def test_a_dialogue_without_a_reply_is_refused(stage_dir):
    mirror = _mirror(stage_dir, [json.dumps(GOOD_COPA)])
    Path(mirror, "wizard_of_wikipedia/validation.jsonl").write_text(json.dumps({"text": ["only a context"]}) + "\n")
    result = stage_dir.run("import_benchmarks", "--out", "data/benchmarks")
    _fails_cleanly(result, stage_dir, "wizard_of_wikipedia/validation.jsonl:1: field 'text' must list at least 2 turns")


def test_a_good_mirror_is_imported_whole(stage_dir):
    _mirror(stage_dir, [json.dumps(GOOD_COPA)] * 3)
    result = stage_dir.run("import_benchmarks", "--out", "data/benchmarks")
    assert result.returncode == 0, result.stderr
    assert "copa (validation: 3)" in result.stdout
    assert (stage_dir.root / "data/benchmarks/copa/validation.jsonl").read_text().count("\n") == 3


def test_a_target_that_is_not_a_choice_stops_the_import_with_the_line(stage_dir):
    """The record has every field copa reads; lm-eval's copa config reads any label but 0 as choice 2."""
    _mirror(stage_dir, [json.dumps(GOOD_COPA), json.dumps(GOOD_COPA | {"label": 7})])
    result = stage_dir.run("import_benchmarks", "--out", "data/benchmarks")
    _fails_cleanly(result, stage_dir, "copa/validation.jsonl:2: field 'label' is 7; a copa record's label is one of "
                   "[0, 1]")


def _first_record(task: str) -> dict:
    with open(SHARED / "benchmarks" / task / "validation.jsonl") as f:
        return json.loads(f.readline())


@pytest.mark.parametrize(("task", "change", "expected"), [
    ("piqa", {"label": -1}, "its target -1 is not one of its 2 choices"),  # lm-eval would take the last choice
    ("piqa", {"label": 2}, "its target 2 is not one of its 2 choices"),
    ("hellaswag", {"endings": []}, "renders to no choices"),
    ("arc_easy", {"answerKey": "Z"}, "the task's prompt does not render (ValueError"),
    ("pubmedqa", {"final_decision": "perhaps"}, "its target 'perhaps' is not one of its 3 choices"),
    ("winogrande", {"answer": "3"}, "the task's prompt does not render (KeyError"),
    ("mathqa", {"correct": "q"}, "the task's prompt does not render"),
    ("wizard_of_wikipedia", {"text": ["a context", "   "]}, "renders to an empty prompt or an empty gold reply"),
])
def test_each_task_renders_every_record_through_its_own_lm_eval_config(tmp_path, task, change, expected):
    from gap_pipeline.scoring.records import render_split

    good = _first_record(task)
    split = tmp_path / task / "validation.jsonl"
    split.parent.mkdir()
    split.write_text(json.dumps(good) + "\n")
    assert render_split(task, split) == 1  # the shipped record renders: the check is not what refuses
    split.write_text(json.dumps(good) + "\n" + json.dumps(good | change) + "\n")
    with pytest.raises(DataFormatError) as refused:
        render_split(task, split)
    assert str(refused.value).startswith(f"{split}:2: ") and expected in str(refused.value), str(refused.value)
