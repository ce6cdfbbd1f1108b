"""How sure a comparison is: paired bootstrap intervals, detectable gains, and intervals over runs.

GAP and the base model are scored on the same examples, so their difference is measured per example (paired):
the example-to-example spread that both models share cancels out. A family's score is the mean of its tasks'
means, so resampling keeps that structure: each task's examples are resampled within the task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np

Z95 = NormalDist().inv_cdf(0.975)  # two-sided 5%
Z80 = NormalDist().inv_cdf(0.80)  # 80% power


def paired_differences(base: Mapping[object, float], other: Mapping[object, float]) -> np.ndarray:
    """``other - base`` on the examples both scored (keyed by doc_id), in a fixed order."""
    shared = sorted(set(base) & set(other), key=str)
    return np.array([other[doc] - base[doc] for doc in shared], dtype=float)


def family_delta(differences: Mapping[str, np.ndarray]) -> float:
    """The family's delta as the paper averages it: the mean over tasks of each task's mean difference."""
    return float(np.mean([d.mean() for d in differences.values()]))


def bootstrap_ci(
    differences: Mapping[str, np.ndarray], resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the family delta, resampling each task's examples within the task."""
    rng = np.random.default_rng(seed)
    means = np.zeros(resamples)
    for diffs in differences.values():
        picks = rng.integers(0, len(diffs), size=(resamples, len(diffs)))
        means += diffs[picks].mean(axis=1)
    means /= len(differences)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def standard_error(differences: Mapping[str, np.ndarray]) -> float:
    """Standard error of the family delta from the paired variances: sqrt(sum_t var_t / n_t) / tasks."""
    variance = sum(d.var(ddof=1) / len(d) if len(d) > 1 else 0.0 for d in differences.values())
    return math.sqrt(variance) / len(differences)


def detectable_gain(differences: Mapping[str, np.ndarray]) -> float:
    """The smallest family gain a two-sided 5% test detects with 80% power at these examples (MDE)."""
    return (Z95 + Z80) * standard_error(differences)


def examples_needed(sds: Sequence[float], gain: float) -> int:
    """Examples per task for a family of tasks with paired SDs ``sds`` to detect ``gain`` (80% power, 5%)."""
    return math.ceil(((Z95 + Z80) * math.sqrt(sum(sd**2 for sd in sds)) / (len(sds) * gain)) ** 2)


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion: sound at the small counts of a sweep, unlike p +- z*se."""
    if trials == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(above: int, below: int) -> float:
    """Two-sided exact sign test p-value: are runs above their baseline as often as below? Ties left out."""
    trials = above + below
    if trials == 0:
        return 1.0
    tail = sum(math.comb(trials, k) for k in range(min(above, below) + 1)) / 2**trials
    return min(1.0, 2 * tail)


def mean_ci(values: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean over runs (one value per run)."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)
