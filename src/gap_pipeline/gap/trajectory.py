"""GAP's effect at every step: the reported examples scored after each ascent step, step 0 included.

The evaluate stages score the one step the selection kept. The trajectory scores every step on the same
reported examples (each task's first ``eval.tasks.<task>.limit`` of its split), through the same lm-eval tasks,
model class and seeds (``scoring.evaluate.evaluate_task``), so each step pairs with the base model example by
example, and the step the paper's protocol would have kept (the best on these very examples) can be set beside
the one kept on the disjoint selection slice. It runs in its own stage, re-running the ascent (deterministic:
the same weights at every step as the gap stage's), so that turning it on or changing the reported examples
reruns neither the ascent's selection nor the evaluations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gap_pipeline.core.io import atomic_path, write_json, write_jsonl
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.tasks import MAIN_METRIC, TRAJECTORY_STEPS_FILE
from gap_pipeline.gap.ascent import gradient_ascent
from gap_pipeline.gap.post_train import AscentSetup
from gap_pipeline.scoring.evaluate import evaluate_task, make_lm
from gap_pipeline.scoring.task_config import task_run


def score_trajectory(params: TrackedParams, model_dir: Path, corpus_file: Path, benchmarks: Path,
                     out_dir: Path) -> dict[str, Any]:
    """Write ``out_dir``: ``steps.json`` (each step's task scores) and ``<task>.jsonl`` (every step's predictions,
    each row with its ``step``). The stage calls it only when ``gap.trajectory`` is set."""
    gap, settings = params.gap, params.eval
    setup = AscentSetup.load(params, model_dir, corpus_file)  # as the gap stage starts: the same weights at every step
    model, tokenizer, input_ids = setup.model, setup.tokenizer, setup.input_ids
    lm = make_lm(settings.model_class, model, tokenizer, settings.batch_size)
    runs = [task_run(params, task, run.split, run.limit, benchmarks) for task, run in settings.tasks.items()]
    scores: dict[int, dict[str, float]] = {}
    rows: dict[str, list[dict]] = {run.task: [] for run in runs}

    def on_step(log: Any, stepped: Any) -> None:
        stepped.eval()
        if hasattr(lm, "prompts"):
            lm.prompts.clear()  # caches read with the previous step's weights
        scores[log.step] = {}
        for run in runs:
            result, predictions = evaluate_task(lm, tokenizer, run, settings.seed)
            scores[log.step][run.task] = result["metrics"][MAIN_METRIC[run.task]]
            rows[run.task] += [{"step": log.step} | p for p in predictions]
        stepped.train()
        print(f"trajectory step {log.step}: " + ", ".join(f"{t} {v:.4f}" for t, v in scores[log.step].items()),
              flush=True)

    gradient_ascent(model, input_ids, gap.steps, gap.lr, gap.betas, gap.loss_ceiling, on_step=on_step)
    record = {"enabled": True, "steps": sorted(scores), "tasks": list(rows),
              "scores": {str(step): found for step, found in sorted(scores.items())}}
    with atomic_path(out_dir, directory=True) as tmp:
        write_json(tmp / TRAJECTORY_STEPS_FILE, record)
        for task, task_rows in rows.items():
            write_jsonl(tmp / f"{task}.jsonl", task_rows)
    return record
