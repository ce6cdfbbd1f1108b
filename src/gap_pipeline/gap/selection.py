"""Best-step selection: score a small slice of the tasks after every GAP step and keep the best step's weights.

The paper validated after every step and kept the best one, on the same examples it then reported. Here the
selection slice is the *last* ``gap.select.examples`` examples of each task's ``gap.select.split``, and the
reporting stages score the *first* ``eval.tasks.<task>.limit`` of ``eval.tasks.<task>.split``; when the splits are
the same the two must not overlap (``core.checks``, before any stage runs), so a reported gain is not the
selection's own noise picked as signal. lm-eval owns the tasks and metrics here as in the reporting
stages; the task objects are built once and re-scored at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.evaluator import evaluate

from gap_pipeline.core.checks import refuse_slice_size
from gap_pipeline.core.params import SelectParams, TrackedParams
from gap_pipeline.core.tasks import FAMILIES, MAIN_METRIC, criterion_value, family_averages
from gap_pipeline.gap.ascent import restore_weights, snapshot_weights
from gap_pipeline.scoring.evaluate import make_lm
from gap_pipeline.scoring.task_config import task_manager_for, task_run, task_spec


@dataclass
class SelectionSlice:
    """The lm-eval tasks of the slice, built once, and which example indices of each one to score."""

    task_dict: dict
    samples: dict[str, list[int]]

    @classmethod
    def build(cls, params: TrackedParams, benchmarks: Path) -> SelectionSlice:
        select, task_dict, samples = params.gap.select, {}, {}
        for task in select.tasks:
            run = task_run(params, task, select.split, None, benchmarks)
            loaded = task_manager_for(run).load([task_spec(run)])
            size = len(loaded["tasks"][task].eval_docs)
            refuse_slice_size(select.examples, task, select.split, size)
            for part, entries in loaded.items():
                task_dict.setdefault(part, {}).update(entries)
            # The paper's protocol selects on the split's first examples, the very ones the evaluate stages report.
            first = 0 if select.protocol == "paper" else size - select.examples
            samples[task] = list(range(first, first + select.examples))
        return cls(task_dict, samples)

    @torch.no_grad()
    def score(self, lm: LM) -> dict[str, float]:
        """``{task: main metric}`` of the model inside ``lm`` on the slice."""
        results = evaluate(lm, self.task_dict, samples=self.samples, bootstrap_iters=0, log_samples=False,
                           verbosity="WARNING")
        return {task: float(results["results"][task][f"{MAIN_METRIC[task]},none"]) for task in self.samples}


@dataclass
class BestStep:
    """Follows the selection curve during the ascent and holds a CPU copy of the best weights seen."""

    select: SelectParams
    slice: SelectionSlice | None = None
    lm: LM | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_step: int | None = None
    best_value: float | None = None
    _weights: dict[str, torch.Tensor] | None = None

    def observe(self, step: int, scores: dict[str, float], model: torch.nn.Module) -> None:
        averages = family_averages(scores)
        start = self.curve[0] if self.curve else averages  # step 0's row holds its averages
        value = criterion_value(self.select.criterion, averages, start)
        self.curve.append({"step": step, "criterion": value, **averages, **scores})
        # Strictly better only: on a tie the earlier step wins (fewer updates, nearer the untouched model).
        if self.best_value is None or value > self.best_value:
            self.best_step, self.best_value = step, value
            self._weights = snapshot_weights(model, into=self._weights)

    @classmethod
    def for_model(cls, params: TrackedParams, model: torch.nn.Module, tokenizer: Any, benchmarks: Path) -> BestStep:
        """A tracker that scores ``model`` itself (not a copy) through the lm-eval class ``eval.model_class``."""
        lm = make_lm(params.eval.model_class, model, tokenizer, params.eval.batch_size)
        return cls(params.gap.select, SelectionSlice.build(params, benchmarks), lm)

    def on_step(self, log: Any, model: torch.nn.Module) -> None:
        """gradient_ascent's hook: score the weights of ``log.step`` on the slice, then let the ascent go on."""
        model.eval()
        scores = self.slice.score(self.lm)
        model.train()
        self.observe(log.step, scores, model)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in self.curve[-1].items() if k in FAMILIES or k == "criterion")
        print(f"step {log.step}: loss {log.loss:.3f}; selection slice: {shown}", flush=True)

    def restore(self, model: torch.nn.Module) -> int:
        """Put the best step's weights back into ``model``; returns that step."""
        restore_weights(model, self._weights)
        return self.best_step

    def summary(self) -> dict[str, Any]:
        """train.json's ``selection``: the criterion, its best value, the kept step's gains over step 0 on the slice."""
        start, kept = self.curve[0], self.curve[self.best_step]
        return {"criterion": self.select.criterion, "protocol": self.select.protocol, "best": self.best_value,
                **{f"{f}_gain": kept[f] - start[f] for f in FAMILIES if f in start}}


def selection_columns(select: SelectParams) -> list[str]:
    """Columns of selection.tsv, the per-step selection curve."""
    families = [f for f, members in FAMILIES.items() if set(members) & set(select.tasks)]
    return ["step", "criterion", *families, *select.tasks]
