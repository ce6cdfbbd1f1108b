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
from torch.profiler import ProfilerActivity, profile

from gap_pipeline.core.params import load_params
from gap_pipeline.core.runtime import configure_cpu
from gap_pipeline.core.tasks import CLASSIFICATION_TASKS
from gap_pipeline.models import load_model, prepare_model
from gap_pipeline.scoring.evaluate import evaluate_task, make_lm
from gap_pipeline.scoring.task_config import TaskRun

SHARED = Path(__file__).resolve().parents[2] / "shared"
CATEGORIES = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm"),
    "attention": ("scaled_dot_product", "attention", "aten::_softmax"),
    "copy": ("copy_", "aten::cat", "index_select", "aten::clone", "aten::contiguous", "aten::index",
             "aten::to", "aten::_to_copy", "aten::stack", "aten::zeros", "aten::full", "aten::empty", "fill_"),
}


def category(op: str) -> str:
    """The bucket an op's self time counts in (the first category one of whose markers its name holds)."""
    return next((name for name, marks in CATEGORIES.items() if any(m in op for m in marks)), "other ops")


class PassShapes:
    """Counts the decoder's forward passes and the rows and tokens per row each ran."""

    def __init__(self, model: torch.nn.Module):
        self.shapes: list[tuple[int, int]] = []
        self.handle = model.get_decoder().register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.shapes.append(tuple(ids.shape))

    def take(self) -> dict[str, float]:
        shapes, self.shapes = self.shapes, []
        single = sum(1 for _, tokens in shapes if tokens == 1)
        return {"passes": len(shapes), "one-token passes": single,
                "mean rows": sum(r for r, _ in shapes) / max(1, len(shapes)),
                "mean tokens/row (multi-token passes)":
                    sum(t for _, t in shapes if t > 1) / max(1, len(shapes) - single)}


def profile_task(task: str, model, tokenizer, limit: int, batch_size: int, seed: int,
                 shapes: PassShapes) -> dict[str, float]:
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
    return {"wall": wall, **dict(seconds), "outside ops": max(0.0, wall - inside), **shapes.take()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model.name, or a prepared model directory")
    parser.add_argument("--limit", type=int, default=32, help="examples per task")
    parser.add_argument("--tasks", nargs="+", default=list(CLASSIFICATION_TASKS))
    args = parser.parse_args()
    params = load_params()
    configure_cpu(params.runtime.threads)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(args.model)
        if not model_dir.is_dir():
            model_dir = Path(scratch) / "model"
            prepare_model(args.model, model_dir, Path(scratch))
        model, tokenizer = load_model(model_dir, torch.device("cpu"), torch.float32)
        shapes = PassShapes(model)
        print(f"model {args.model}; {torch.get_num_threads()} threads; {args.limit} examples per task; "
              f"shares of each task's wall time (profiler on)")
        columns = ["matmul", "attention", "copy", "other ops", "outside ops"]
        print(f"{'task':16}{'wall s':>8}" + "".join(f"{c:>13}" for c in columns)
              + f"{'passes':>8}{'1-token':>8}{'rows':>7}{'tokens':>8}")
        for task in args.tasks:
            r = profile_task(task, model, tokenizer, args.limit, params.eval.batch_size, params.eval.seed, shapes)
            print(f"{task:16}{r['wall']:8.1f}" + "".join(f"{r.get(c, 0.0) / r['wall']:13.1%}" for c in columns)
                  + f"{r['passes']:8d}{r['one-token passes']:8d}{r['mean rows']:7.1f}"
                  + f"{r['mean tokens/row (multi-token passes)']:8.1f}", flush=True)


if __name__ == "__main__":
    main()
