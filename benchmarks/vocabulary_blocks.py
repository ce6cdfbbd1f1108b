"""FastLM's vocabulary projection at several block shapes, side by side in one run.

FastLM projects its scored positions onto the vocabulary ``projection_rows`` at a time, ``vocabulary_chunk``
columns at a time, and reduces each block of logits at once (``scoring.vocabulary``). The block's shape decides
how much of that work is matmul and how much is waiting on memory, so it is measured here rather than guessed:
each shape scores the same random hidden states through a head of the model's shape (the time does not depend
on the weights' values), the shapes take turns for ``--rounds`` rounds (so a busy spell of the machine falls on
all of them), and the median of each is printed as GFLOP/s and as a ratio to the first shape. Run it on an
idle machine:

    .venv/bin/python benchmarks/vocabulary_blocks.py --vocabulary 49152 --hidden 576     # SmolLM2-135M
    .venv/bin/python benchmarks/vocabulary_blocks.py --vocabulary 262144 --hidden 640    # Gemma-3-270M
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time

import torch

from gap_pipeline.core.params import load_params
from gap_pipeline.core.runtime import configure_cpu
from gap_pipeline.scoring.fast_lm import FastLM
from gap_pipeline.scoring.vocabulary import column_chunks, score_positions


def default_shape() -> tuple[int, int]:
    """FastLM's own ``projection_rows`` and ``vocabulary_chunk``: the shape every other is compared with."""
    defaults = inspect.signature(FastLM.__init__).parameters
    return defaults["projection_rows"].default, defaults["vocabulary_chunk"].default


OTHER_SHAPES = [(1024, 1024), (1024, 512), (2048, 512), (512, 1024), (1024, 2048), (2048, 1024), (512, 4096)]
DEFAULT_SHAPE = default_shape()
SHAPES = [DEFAULT_SHAPE, *(shape for shape in OTHER_SHAPES if shape != DEFAULT_SHAPE)]


def time_shape(head: torch.nn.Linear, hidden: torch.Tensor, targets: torch.Tensor, rows: int, chunk: int) -> float:
    """Seconds to score every position of ``hidden`` in blocks of ``rows`` x ``chunk`` logits."""
    start = time.perf_counter()
    score_positions(lambda block: column_chunks(head, block, chunk, None), hidden, targets, rows, torch.float32)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocabulary", type=int, default=49152, help="the head's output columns")
    parser.add_argument("--hidden", type=int, default=576, help="the head's input width")
    parser.add_argument("--positions", type=int, default=2048, help="scored positions per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="turns each shape takes")
    args = parser.parse_args()
    configure_cpu(load_params().runtime.threads)
    torch.manual_seed(0)
    head = torch.nn.Linear(args.hidden, args.vocabulary, bias=False)
    hidden = torch.randn(args.positions, args.hidden)
    targets = torch.randint(0, args.vocabulary, (args.positions,))
    seconds: dict[tuple[int, int], list[float]] = {shape: [] for shape in SHAPES}
    for shape in SHAPES:  # warm-up: the first use of each shape pays for its memory
        time_shape(head, hidden, targets, *shape)
    for _ in range(args.rounds):
        for shape in SHAPES:
            seconds[shape].append(time_shape(head, hidden, targets, *shape))
    gflop = 2 * args.positions * args.vocabulary * args.hidden / 1e9
    first = statistics.median(seconds[SHAPES[0]])
    print(f"head {args.vocabulary} x {args.hidden}, {args.positions} positions, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'rows x columns':>16}{'MiB':>6}{'ms':>10}{'GFLOP/s':>9}{'vs ' + 'x'.join(map(str, SHAPES[0])):>12}"
          f"{'min-max ms':>22}")
    for (rows, chunk), times in seconds.items():
        median = statistics.median(times)
        print(f"{rows:>9} x {chunk:<5}{rows * chunk * 4 / 2**20:6.0f}{1e3 * median:10.3f}{gflop / median:9.1f}"
              f"{first / median:11.2f}x{1e3 * min(times):11.3f} - {1e3 * max(times):.3f}")


if __name__ == "__main__":
    main()
