"""Per question, FastLM against HFLM, each under SDPA and under eager attention: which class moves with the kernel.

FastLM hands the model custom masks (packed rows); HFLM only causal ones. A fused attention kernel that handles
a custom mask differently shows up as FastLM differing from itself between the two attention implementations
while HFLM does not. Prints, per task and pair, how many questions differ by more than 1e-3 in any choice's
log-likelihood and the largest differences with their doc ids:

    .venv/bin/python benchmarks/attention_check.py --model <model dir> --device cuda --limit 128 --unguarded

FastLM trusts no custom mask of its own on CUDA with SDPA in a model with sliding-window layers
(``fast_lm.fused_masks_unsound``, set from this script's 2026-12-04 run); ``--unguarded`` lifts that, to see
whether the kernel still differs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from eval_speed import SHARED  # beside this file: run as a script
from transformers import AutoModelForCausalLM, AutoTokenizer

from gap_pipeline.scoring import fast_lm
from gap_pipeline.scoring.evaluate import evaluate_task, make_lm
from gap_pipeline.scoring.task_config import TaskRun

PAIRS = ((("eager", "hf"), ("sdpa", "hf")), (("eager", "fast"), ("sdpa", "fast")),
         (("eager", "hf"), ("eager", "fast")), (("sdpa", "hf"), ("sdpa", "fast")))


def differing(x: dict, y: dict, threshold: float = 1e-3) -> tuple[int, list[tuple[float, object]]]:
    """How many questions (doc id -> choices' log-likelihoods) differ by more than ``threshold`` in any choice,
    and the four largest differences with their doc ids."""
    diffs = sorted(((max(abs(u - v) for u, v in zip(x[k], y[k], strict=True)), k) for k in x), reverse=True)
    return sum(d > threshold for d, _ in diffs), [(round(d, 4), k) for d, k in diffs[:4]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a prepared model directory")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--limit", type=int, default=128)
    parser.add_argument("--tasks", nargs="+", default=["piqa", "mathqa"])
    parser.add_argument("--benchmarks", type=Path, default=SHARED / "benchmarks")
    parser.add_argument("--unguarded", action="store_true", help="let FastLM use its custom masks everywhere")
    args = parser.parse_args()
    if args.unguarded:
        fast_lm.fused_masks_unsound = lambda config, device: False
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    found: dict[tuple[str, str, str], dict] = {}
    for attention in ("eager", "sdpa"):
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32,
                                                     attn_implementation=attention).to(args.device).eval()
        for task in args.tasks:
            run = TaskRun(task, "validation", args.limit, args.benchmarks)
            for name in ("hf", "fast"):
                _, predictions = evaluate_task(make_lm(name, model, tokenizer, 16), tokenizer, run, 1234)
                found[attention, task, name] = {p["doc_id"]: p["loglikelihoods"] for p in predictions}
        del model
    for task in args.tasks:
        for a, b in PAIRS:
            x, y = found[a[0], task, a[1]], found[b[0], task, b[1]]
            count, largest = differing(x, y)
            print(f"{args.device} {task} {a} vs {b}: {count} of {len(x)} differ > 1e-3; largest {largest}", flush=True)


if __name__ == "__main__":
    main()
