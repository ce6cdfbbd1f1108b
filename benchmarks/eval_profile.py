"""Where FastLM's evaluation time goes, per task: matmuls, attention, memory copies, other ops, and time in none.

Issue #18 asks why our passes run at about half of the float32 matmul peak where HFLM's reach 70%. This runs
each task once under ``torch.profiler`` and splits its wall time by the ops' own (self) time into:

- ``matmul``: ``aten::mm``/``addmm``/``bmm``/``matmul`` (the work the peak is measured on),
- ``attention``: the attention kernels (``scaled_dot_product_attention``, its internals, its softmax),
- ``copy``: copying and reshaping memory (``copy_``, ``cat``, ``index_select``, ``clone``, cache updates),
- ``other ops``: everything else the profiler records (norms, activations, embedding, reductions),
- ``outside ops``: wall time in no op at all (Python between passes, tokenizing, lm-eval's bookkeeping),

and counts the decoder passes with their mean rows and tokens per row (small passes leave a CPU's matmul
under-used). The profiler adds its own cost to every op, so shares matter more than seconds. Run it on an
idle machine:

    .venv/bin/python benchmarks/eval_profile.py --model smollm2-135m --limit 32 --tasks arc_easy mathqa
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from eval_speed import SHARED, MatmulWork, model_directory  # beside this file: run as a script
from torch.profiler import ProfilerActivity, profile

from gap_pipeline.core.params import load_params
from gap_pipeline.core.runtime import configure_cpu
from gap_pipeline.core.tasks import CLASSIFICATION_TASKS
from gap_pipeline.models import load_model
from gap_pipeline.scoring.evaluate import evaluate_task, make_lm
from gap_pipeline.scoring.task_config import TaskRun

# Exact op names, except attention's kernels, which are matched by a part of their names.
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear"}
COPY_OPS = {"aten::copy_", "aten::cat", "aten::index_select", "aten::clone", "aten::contiguous", "aten::index",
            "aten::to", "aten::_to_copy", "aten::stack", "aten::zeros", "aten::full", "aten::empty", "aten::fill_"}
ATTENTION_MARKS = ("scaled_dot_product", "attention")


def category(op: str) -> str:
    """The bucket an op's self time counts in."""
    if op in MATMUL_OPS:
        return "matmul"
    if op == "aten::_softmax" or any(mark in op for mark in ATTENTION_MARKS):
        return "attention"
    return "copy" if op in COPY_OPS else "other ops"


def pass_summary(passes: list[tuple[int, int]]) -> dict[str, float]:
    """How many decoder passes ran, how many read one token per row, and their mean rows and tokens per row."""
    single = sum(1 for _, tokens in passes if tokens == 1)
    return {"passes": len(passes), "one-token passes": single,
            "mean rows": sum(r for r, _ in passes) / max(1, len(passes)),
            "mean tokens/row (multi-token passes)": sum(t for _, t in passes if t > 1) / max(1, len(passes) - single)}


def profile_task(task: str, model, tokenizer, limit: int, batch_size: int, seed: int,
                 work: MatmulWork) -> dict[str, float]:
    """One FastLM evaluation of ``task`` under the profiler: wall seconds and seconds per category."""
    lm = make_lm("fast", model, tokenizer, batch_size)
    run = TaskRun(task, "validation", limit, SHARED / "benchmarks")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        evaluate_task(lm, tokenizer, run, seed)
        wall = time.perf_counter() - start
    seconds: Counter[str] = Counter()
    for event in prof.key_averages():
        seconds[category(event.key)] += event.self_cpu_time_total / 1e6
    inside = sum(seconds.values())
    passes, work.passes = work.passes, []
    return {"wall": wall, **dict(seconds), "outside ops": max(0.0, wall - inside), **pass_summary(passes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model.name, or a prepared model directory")
    parser.add_argument("--limit", type=int, default=32, help="examples per task")
    parser.add_argument("--tasks", nargs="+", default=list(CLASSIFICATION_TASKS))
    args = parser.parse_args()
    params = load_params()
    configure_cpu(params.runtime.threads)
    with tempfile.TemporaryDirectory() as scratch:
        model, tokenizer = load_model(model_directory(args.model, Path(scratch)), torch.device("cpu"), torch.float32)
        work = MatmulWork(model)
        print(f"model {args.model}; {torch.get_num_threads()} threads; {args.limit} examples per task; "
              f"shares of each task's wall time (profiler on)")
        columns = ["matmul", "attention", "copy", "other ops", "outside ops"]
        print(f"{'task':16}{'wall s':>8}" + "".join(f"{c:>13}" for c in columns)
              + f"{'passes':>8}{'1-token':>8}{'rows':>7}{'tokens':>8}")
        for task in args.tasks:
            r = profile_task(task, model, tokenizer, args.limit, params.eval.batch_size, params.eval.seed, work)
            print(f"{task:16}{r['wall']:8.1f}" + "".join(f"{r.get(c, 0.0) / r['wall']:13.1%}" for c in columns)
                  + f"{r['passes']:8d}{r['one-token passes']:8d}{r['mean rows']:7.1f}"
                  + f"{r['mean tokens/row (multi-token passes)']:8.1f}", flush=True)


if __name__ == "__main__":
    main()
