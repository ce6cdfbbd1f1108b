"""What a task costs outside the model: lm-eval's bookkeeping, with its own prompt rendering against ours.

``evaluate_task`` is timed with an LM that scores nothing (each choice's log-likelihood is minus its length),
so the seconds are lm-eval's: loading and preparing the split, rendering prompts, building requests, metrics.
That cost is the same for every model class, so it pulls a fast class's achieved share of the matmul peak
down more than a slow one's. Each task runs ``--rounds`` times in both ways, alternating: lm-eval's
``apply_template`` (compiling its Jinja template on every call) and ours (``scoring/prompt_templates.py``:
compiled once). It prints the median seconds of each, their ratio, and whether the metrics and predictions
were identical. Run it on an idle machine:

    .venv/bin/python benchmarks/task_overhead.py --tasks arc_easy mathqa
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from eval_speed import SHARED, model_directory  # beside this file: run as a script
from lm_eval import utils as lm_eval_utils
from lm_eval.api.model import LM
from transformers import AutoTokenizer

from gap_pipeline.core.params import load_params
from gap_pipeline.core.tasks import CLASSIFICATION_TASKS
from gap_pipeline.scoring import evaluate, prompt_templates
from gap_pipeline.scoring.task_config import TaskRun


class ScoresNothing(LM):
    """Answers every choice with minus its length in characters: lm-eval's whole path, no model."""

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return [(-float(len(r.args[1])), False) for r in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("only multiple-choice tasks are timed")

    def generate_until(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("only multiple-choice tasks are timed")


def timed(tokenizer, run: TaskRun, seed: int, cached: bool) -> tuple[float, tuple]:
    """Seconds of one ``evaluate_task``, its metrics and predictions; ``cached`` False: lm-eval's own rendering."""
    lm_eval_utils.apply_template = prompt_templates._UNCACHED  # each timing starts from lm-eval's state
    prompt_templates.compiled_template.cache_clear()
    install = prompt_templates.cache_prompt_templates if cached else (lambda: None)
    with mock.patch.object(evaluate, "cache_prompt_templates", install):
        start = time.perf_counter()
        record, predictions = evaluate.evaluate_task(ScoresNothing(), tokenizer, run, seed)
        return time.perf_counter() - start, (record["metrics"], predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m",
                        help="model.name, or a prepared model directory; only its tokenizer is read")
    parser.add_argument("--tasks", nargs="+", default=list(CLASSIFICATION_TASKS), choices=CLASSIFICATION_TASKS)
    parser.add_argument("--limit", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seed = load_params().eval.seed
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = AutoTokenizer.from_pretrained(model_directory(args.model, Path(scratch)))
    print(f"{'task':16}{'lm-eval s':>10}{'ours s':>9}{'ratio':>8}  same outputs")
    for task in args.tasks:
        run = TaskRun(task, "validation", args.limit, SHARED / "benchmarks")
        seconds: dict[bool, list[float]] = {False: [], True: []}
        outputs: dict[bool, tuple] = {}
        for _ in range(args.rounds):
            for cached in (False, True):
                took, outputs[cached] = timed(tokenizer, run, seed, cached)
                seconds[cached].append(took)
        theirs, ours = statistics.median(seconds[False]), statistics.median(seconds[True])
        print(f"{task:16}{theirs:10.2f}{ours:9.2f}{theirs / ours:7.2f}x  {outputs[False] == outputs[True]}",
              flush=True)


if __name__ == "__main__":
    main()
