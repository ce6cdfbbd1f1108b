"""A GAP step's rate against the matmul peak of the same device and dtype, measured side by side in one run.

A step (forward, backward, Adam, the weight snapshot) on a ``--tokens``-token text runs 6 FLOPs per weight and
token in its matmuls (forward 2, backward 4; the vocabulary head included, the embedding lookup not); the share of
the peak says how much of the device the step leaves unused. The weights' values do not change a step's time, so
a model can be built from its config alone (``--config``), on a machine that holds no weights; ``--model`` loads a
prepared model directory instead. ``--rounds`` repeats the measurement (peak, then 8 steps) and prints the
spread: on a shared VM one round's share moves by 10 points or more. ``--compare-autograd`` also times, in each
round, the step as it ran before a tied embedding sent back only its rows (autograd's dense sum), to show what
that change buys. Examples:

    .venv/bin/python benchmarks/gap_step.py --model models/base --rounds 5
    .venv/bin/python benchmarks/gap_step.py --model models/reference/gemma3-270m --rounds 6 --compare-autograd
    python benchmarks/gap_step.py --config models/reference/gemma3-270m/config.json --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from gap_pipeline.core.params import load_params
from gap_pipeline.core.runtime import configure_cpu
from gap_pipeline.gap.ascent import gradient_ascent
from gap_pipeline.models import count_parameters, load_model


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, device: str = "cpu", repeats: int = 10) -> float:
    """Best matmul rate of ``device`` in ``dtype`` (CPU: with torch's current threads): the ceiling to compare with."""
    size = 2048 if device == "cpu" else 8192  # a GPU needs a large product to reach its peak
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def body_matmul_params(model: torch.nn.Module) -> int:
    """Weights the transformer body uses in matmuls (the embedding lookup is not one)."""
    return count_parameters(model.get_decoder()) - model.get_input_embeddings().weight.numel()


def step_gflop(model: torch.nn.Module, tokens: int) -> float:
    """One step's matmul GFLOP: forward 2, backward 4 per weight and token, at every position (the loss needs all)."""
    weights = body_matmul_params(model) + model.get_output_embeddings().weight.numel()
    return 6 * weights * tokens / 1e9


def time_gap_steps(model: torch.nn.Module, ids: torch.Tensor, lr: float, betas: list[float],
                   updates: int = 8, embedding_rows: bool = True) -> tuple[float, float]:
    """Median and first seconds of ``updates`` GAP steps on ``ids``; post-trains ``model`` in place.

    The first step also allocates Adam's state and warms the allocator, so the median is the step time of a run.
    """
    result = gradient_ascent(model, ids, updates, lr, betas, embedding_rows=embedding_rows)
    seconds = [log.seconds for log in result.logs[1:]]
    return statistics.median(seconds), seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a prepared model directory (its weights)")
    source.add_argument("--config", type=Path, help="a model's config.json (random weights of that shape)")
    parser.add_argument("--tokens", type=int, default=None, help="text length (default: gap.max_length)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the peak and 8 steps this many times, one after the other, and print each "
                             "round's share with their median and range")
    parser.add_argument("--compare-autograd", action="store_true",
                        help="each round also times the step with autograd summing a tied embedding's gradient "
                             "(dense), alternating which goes first, and prints its time over ours")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    params = load_params()
    configure_cpu(params.runtime.threads)
    dtype, tokens = getattr(torch, args.dtype), args.tokens or params.gap.max_length
    torch.manual_seed(0)
    if args.model:
        model = load_model(args.model, torch.device(args.device), dtype)[0]
    else:
        config = AutoConfig.from_pretrained(args.config.parent)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(args.device)
    ids = torch.randint(0, model.get_input_embeddings().weight.shape[0], (1, tokens), device=args.device)
    gflop, shares, ratios = step_gflop(model, tokens), [], []
    variants = {"ours": True} | ({"autograd": False} if args.compare_autograd else {})  # name: embedding_rows
    for round_ in range(1, args.rounds + 1):
        # The peak is measured again each round, beside its steps: the machine's speed drifts between rounds.
        peak = matmul_peak_gflops(dtype, args.device)
        order = list(variants) if round_ % 2 == 1 else list(variants)[::-1]  # even rounds: autograd's sum first
        times = {name: time_gap_steps(model, ids, params.gap.lr, params.gap.betas, embedding_rows=variants[name])
                 for name in order}
        median, first = times["ours"]
        if "autograd" in times:
            dense = times["autograd"][0]
            ratios.append(dense / median)
            print(f"round {round_}: with autograd's dense sum of the tied embedding's gradient: step {dense:.3f} s, "
                  f"{ratios[-1]:.3f}x ours")
        shares.append(gflop / median / peak)
        print(f"{'' if args.rounds == 1 else f'round {round_}: '}{args.model or args.config} on {args.device} in "
              f"{args.dtype}, {tokens} tokens: step {median:.3f} s (median of 8; first {first:.3f} s), "
              f"{gflop / median:.1f} GFLOP/s; matmul peak {peak:.1f} GFLOP/s: {shares[-1]:.1%} of the peak",
              flush=True)
    if ratios:
        print(f"autograd's dense sum over ours, {len(ratios)} rounds: median {statistics.median(ratios):.3f}x, "
              f"min {min(ratios):.3f}x, max {max(ratios):.3f}x")
    if args.rounds > 1:
        print(f"share of the peak over {args.rounds} rounds: median {statistics.median(shares):.1%}, "
              f"min {min(shares):.1%}, max {max(shares):.1%}")


if __name__ == "__main__":
    main()
