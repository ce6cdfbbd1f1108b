"""bfloat16's speed with float32's answers: score choices in bfloat16, re-score in float32 what it could change.

A multiple-choice metric depends on the log-likelihoods only through which choice ranks first (``acc``: by
log-likelihood; ``acc_norm``: by log-likelihood per character of the choice). bfloat16 moves each score a little;
when the first choice leads every other by more than their gap could have moved, float32 ranks the same choice
first and the metric is float32's. Each question whose lead is within that bound is scored again in float32.

The bound is measured on the model being scored: the first ``calibration`` questions of each task are scored in
both precisions (they count as re-scored: their answers are float32's). Rounding errors add up along a
continuation like a random walk, so the change to the gap between choices i and j is modelled as at most
``k * (sqrt(n_i) s_i + sqrt(n_j) s_j)`` (n: continuation tokens, s: the metric's scale of each choice's
log-likelihood); ``k`` is the largest the calibration questions need, and ``safety`` widens it.

Requests of other output types (the dialogue tasks' gold-reply loss, whose value is reported as it is) and
tasks outside ``tasks`` are scored in float32 only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import permutations

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.task import Task
from lm_eval.models.huggingface import HFLM

# Metrics decided by the first-ranked choice alone, each with its scale of a choice's log-likelihood, as lm-eval's
# multiple-choice process_results computes them from the choice strings.
PICK_METRICS: dict[str, Callable[[Sequence[str]], list[float]]] = {
    "acc": lambda choices: [1.0] * len(choices),
    "acc_norm": lambda choices: [1.0 / len(c) for c in choices],
    "acc_bytes": lambda choices: [1.0 / len(c.encode("utf-8")) for c in choices],
}

Question = tuple[str, int]  # (task name, doc_id)


def _times(values: Sequence[float], scales: Sequence[float]) -> list[float]:
    return [v * s for v, s in zip(values, scales, strict=True)]


def first_choice(scores: Sequence[float]) -> int:
    """numpy's argmax: the first of equal maxima, as lm-eval picks."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def gap_error_scale(low: Sequence[Sequence[float]], exact: Sequence[Sequence[float]],
                    weights: Sequence[Sequence[float]]) -> float:
    """The smallest k with |change of (score_i - score_j)| <= k (w_i + w_j) for every pair of every question."""
    return max((abs((lo[i] - lo[j]) - (ex[i] - ex[j])) / (w[i] + w[j])
                for lo, ex, w in zip(low, exact, weights, strict=True)
                for i, j in permutations(range(len(w)), 2)), default=0.0)


def is_decided(scores: Sequence[float], weights: Sequence[float], bound: float) -> bool:
    """Whether the first choice leads each other choice j by more than ``bound * (w_first + w_j)``."""
    first = first_choice(scores)
    return all(scores[first] - scores[j] > bound * (weights[first] + weights[j])
               for j in range(len(scores)) if j != first)


class VerifiedLM(LM):
    """An lm-eval model: ``low`` (a bfloat16 copy) scores, ``exact`` (float32) re-scores the undecided questions.

    ``tasks`` are the task objects lm-eval evaluates (for each question's choices and metrics); a request of a
    task not among them is scored in float32. After a run,
    ``rescored`` maps each question answered in float32 to why ("calibration" or "margin"), and
    ``bounds`` holds each task's measured k per metric.
    """

    def __init__(self, low: HFLM, exact: HFLM, calibration: int, safety: float,
                 tasks: Mapping[str, Task] | None = None):
        super().__init__()
        if calibration < 1 or safety < 1:
            raise ValueError(f"eval.precision: calibration={calibration} and safety={safety} must each be at least 1 "
                             "(e.g. calibration: 16, safety: 4.0)")
        self.low, self.exact, self.tasks = low, exact, dict(tasks or {})
        self.calibration, self.safety = calibration, safety
        self.rescored: dict[Question, str] = {}
        self.bounds: dict[str, dict[str, float]] = {}  # task -> metric -> measured k (before ``safety``)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return self.exact.generate_until(requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        return self.exact.loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        metrics = {task: self._metrics(task) for task in {r.task_name for r in requests}}
        by_task: dict[str | None, list[int]] = {}  # None: requests scored in float32 only
        for i, request in enumerate(requests):
            by_task.setdefault(request.task_name if metrics[request.task_name] else None, []).append(i)
        plain = by_task.pop(None, [])
        self._score(self.exact, requests, plain, results, disable_tqdm)
        self._score(self.low, requests, [i for indices in by_task.values() for i in indices], results, disable_tqdm)
        for task, indices in by_task.items():
            self._verify(task, metrics[task], requests, indices, results, disable_tqdm)
        return results  # type: ignore[return-value]

    def _metrics(self, task: str | None) -> list[str]:
        """The pick metrics of a multiple-choice task; [] when a request is not one (it is scored in float32)."""
        spec = self.tasks.get(task) if task else None
        if spec is None or spec.OUTPUT_TYPE != "multiple_choice":
            return []
        names = [m["metric"] for m in spec.config.metric_list or []]
        unknown = sorted(set(names) - set(PICK_METRICS))
        if unknown:  # a metric read from the values, not the pick: bfloat16's values would be reported
            raise ValueError(f"eval.precision: bf16-verified cannot verify task {task!r}'s metric(s) {unknown} "
                             f"(it verifies {sorted(PICK_METRICS)}); set eval.precision.mode: model")
        return names

    @staticmethod
    def _score(lm: HFLM, requests: list[Instance], indices: list[int], results: list, disable_tqdm: bool) -> None:
        if indices:
            for i, answer in zip(indices, lm.loglikelihood([requests[i] for i in indices], disable_tqdm), strict=True):
                results[i] = answer

    def _verify(self, task: str, metrics: list[str], requests: list[Instance], indices: list[int], results: list,
                disable_tqdm: bool) -> None:
        """Measure the bound on the first questions, then re-score in float32 every question it leaves undecided."""
        questions: dict[int, list[int]] = {}  # doc_id -> its requests, in choice order
        for i in sorted(indices, key=lambda i: (requests[i].doc_id, requests[i].idx)):
            questions.setdefault(requests[i].doc_id, []).append(i)
        order = sorted(questions)
        calibrated, rest = order[: self.calibration], order[self.calibration :]
        low = {i: results[i][0] for i in indices}
        self._score(self.exact, requests, [i for doc in calibrated for i in questions[doc]], results, disable_tqdm)
        self.rescored |= {(task, doc): "calibration" for doc in calibrated}
        tokens = {i: self._continuation_tokens(requests[i]) for i in indices}
        scales = {doc: self._scales(task, metrics, [requests[i] for i in questions[doc]]) for doc in order}
        undecided = {doc for doc in rest if scales[doc] is None}  # not one request per choice: never trusted
        self.bounds[task] = {}
        known = [doc for doc in order if scales[doc] is not None]
        for metric in metrics:
            scale = {doc: scales[doc][metric] for doc in known}  # type: ignore[index]
            weight = {doc: _times([math.sqrt(tokens[i]) for i in questions[doc]], scale[doc]) for doc in known}
            bf16 = {doc: _times([low[i] for i in questions[doc]], scale[doc]) for doc in known}
            measured = [doc for doc in calibrated if doc in scale]
            fp32 = [_times([results[i][0] for i in questions[doc]], scale[doc]) for doc in measured]
            k = gap_error_scale([bf16[d] for d in measured], fp32, [weight[d] for d in measured])
            self.bounds[task][metric] = k
            bound = self.safety * k
            undecided |= {doc for doc in rest if doc in scale and not is_decided(bf16[doc], weight[doc], bound)}
        ordered = sorted(undecided)
        self._score(self.exact, requests, [i for doc in ordered for i in questions[doc]], results, disable_tqdm)
        self.rescored |= {(task, doc): "margin" for doc in ordered}

    def _scales(self, task: str, metrics: list[str], group: list[Instance]) -> dict[str, list[float]] | None:
        """Each metric's scale of each choice's log-likelihood; None unless there is one request per choice."""
        choices = self.tasks[task].doc_to_choice(group[0].doc)
        if len(choices) != len(group) or not all(choices):  # an empty choice has no per-character score
            return None
        return {metric: PICK_METRICS[metric](choices) for metric in metrics}

    def _continuation_tokens(self, request: Instance) -> int:
        context, continuation = request.args[:2]
        return max(1, len(self.exact._encode_pair(context, continuation)[1]))
