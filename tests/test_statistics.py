"""The statistics behind every reported comparison, against values worked out by hand."""

import numpy as np
import pytest

from gap_pipeline.reporting.statistics import (
    Z80,
    Z95,
    bootstrap_ci,
    detectable_gain,
    examples_needed,
    family_delta,
    mean_ci,
    paired_differences,
    sign_test,
    standard_error,
    wilson_interval,
)


def test_differences_pair_examples_by_id_not_by_position():
    base = {"a": 0.0, "b": 1.0, "c": 1.0}
    gap = {"c": 0.0, "a": 1.0, "d": 1.0}  # "d" was not scored for base, "b" not for GAP
    assert paired_differences(base, gap).tolist() == [1.0, -1.0]  # a, c


def test_the_family_delta_averages_the_task_means():
    assert family_delta({"copa": np.array([1.0, 0.0]), "piqa": np.array([0.0, 0.0, 0.0, 1.0])}) == pytest.approx(
        (0.5 + 0.25) / 2)


def test_wilson_interval_matches_the_formula_worked_by_hand():
    # p = 0.8, n = 10, z = 1.96: centre 0.99208 / 1.38416, half-width 1.96 * sqrt(0.025604) / 1.38416.
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(5, 5)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_sign_test_is_the_exact_binomial_tail():
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024)  # P(X <= 1) of Binomial(10, 1/2), twice
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(3, 0) == pytest.approx(0.25)


def test_detectable_gain_is_z_sum_times_the_paired_standard_error():
    differences = {"a": np.array([1.0, -1.0, 1.0, -1.0]), "b": np.zeros(4)}
    # var(a) = 4/3 (ddof 1), so var(mean a) = 1/3; b adds nothing; two tasks halve the family's SE.
    assert standard_error(differences) == pytest.approx(np.sqrt(1 / 3) / 2)
    assert Z95 + Z80 == pytest.approx(1.959964 + 0.841621, abs=1e-6)
    assert detectable_gain(differences) == pytest.approx((1.959964 + 0.841621) * np.sqrt(1 / 3) / 2, abs=1e-6)


def test_examples_needed_inverts_the_detectable_gain():
    # Four tasks with paired SD 0.065: n = (2.801585 * sqrt(4 * 0.065^2) / (4 * 0.01))^2 = 9.105^2 = 82.9.
    assert examples_needed([0.065] * 4, 0.01) == 83
    rng = np.random.default_rng(1)
    differences = {t: rng.normal(0, 0.065, 83) for t in "abcd"}
    sds = [d.std(ddof=1) for d in differences.values()]
    assert detectable_gain(differences) == pytest.approx(0.01, rel=0.15)
    assert examples_needed(sds, detectable_gain(differences)) in (82, 83, 84)


def test_bootstrap_interval_is_fixed_by_its_seed_and_close_to_the_normal_one():
    rng = np.random.default_rng(0)
    differences = {"a": rng.normal(0.1, 1.0, 400), "b": rng.normal(0.0, 1.0, 400)}
    low, high = bootstrap_ci(differences, resamples=4000, seed=3)
    assert (low, high) == bootstrap_ci(differences, resamples=4000, seed=3)
    centre, half = family_delta(differences), Z95 * standard_error(differences)
    assert low == pytest.approx(centre - half, abs=0.2 * half) and high == pytest.approx(centre + half, abs=0.2 * half)
    assert bootstrap_ci({"a": np.full(10, 0.5)}) == (0.5, 0.5)  # no spread, no width


def test_mean_ci_over_runs_brackets_the_mean():
    gains = [0.01, 0.02, -0.005, 0.015, 0.0, 0.03]
    low, high = mean_ci(gains)
    assert low < np.mean(gains) < high and low >= min(gains) and high <= max(gains)


def test_power_table_reports_the_detectable_gain_and_the_examples_a_gain_needs():
    from gap_pipeline.reporting.power import paper_mean_gain, power_table
    from gap_pipeline.reporting.run_summary import ModelScores
    from tests.conftest import SHARED

    rng = np.random.default_rng(0)
    tasks = ("wizard_of_wikipedia", "empathetic_dialogues")
    base_examples = {t: {i: float(v) for i, v in enumerate(rng.uniform(0, 0.3, 50))} for t in tasks}
    gap_examples = {t: {i: v + rng.normal(0, 0.06) for i, v in ex.items()} for t, ex in base_examples.items()}
    results = {t: {"score": 0.1, "stderr": 0.01, "examples": 50} for t in tasks}
    base, gap = ModelScores(results, base_examples), ModelScores(results, gap_examples)
    table = power_table(base, gap, {"classification": 0.001, "dialogue": 0.01}).set_index("family")
    row = table.loc["dialogue"]
    differences = {t: paired_differences(base_examples[t], gap_examples[t]) for t in tasks}
    assert row["detectable_now"] == pytest.approx(detectable_gain(differences))
    assert row["examples_per_task"] == 50 and row["tasks"] == 2
    sds = [d.std(ddof=1) for d in differences.values()]
    assert row["examples_needed"] == examples_needed(sds, 0.01)
    assert "classification" not in table.index  # no classification task scored
    # The paper's mean gains for OPT-350M, from its released runs: small and positive, dialogue the larger.
    dialogue, classification = (paper_mean_gain(SHARED / "paper", f) for f in ("dialogue", "classification"))
    assert 0.003 < dialogue < 0.01 and 0 < classification < dialogue
