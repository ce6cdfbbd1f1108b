"""The benchmark scripts still run: their numbers are measurements, but their arithmetic and wiring are code."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from attention_check import differing  # noqa: E402  (a script folder, not a package)
from gap_step import body_matmul_params, step_gflop  # noqa: E402
from vocabulary_blocks import SHAPES, default_shape  # noqa: E402


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """A benchmark script run as a user runs it, from the project root with the package importable."""
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout, env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT / "src")})


def test_a_step_counts_six_flops_per_matmul_weight_and_token(tiny_model):
    # The tiny Llama: body matmuls (attention + MLP, no embedding) and an untied 128 x 32 head.
    hidden, inter, kv, layers, vocab = 32, 64, 16, 2, 128
    body = layers * (hidden * hidden * 2 + hidden * kv * 2 + hidden * inter * 3) + layers * 2 * hidden + hidden
    assert body_matmul_params(tiny_model) == body  # the norms' weights count too: 160 of ~19k, a small overstatement
    assert step_gflop(tiny_model, 10) == pytest.approx(6 * (body + vocab * hidden) * 10 / 1e9)


@pytest.fixture(scope="module")
def gap_step_rounds(tmp_path_factory, tiny_model_factory) -> str:
    """One run of benchmarks/gap_step.py with rounds and the autograd comparison: it prints every line the
    tests below read (a single round prints the same line without its "round 1: " prefix)."""
    model_dir = tiny_model_factory(tmp_path_factory.mktemp("gap-step") / "model")
    result = run_script("benchmarks/gap_step.py", "--config", str(model_dir / "config.json"), "--tokens", "16",
                        "--rounds", "3", "--compare-autograd")
    assert result.returncode == 0, result.stderr
    return result.stdout


def printed_share_rounding(rate: float, peak: float) -> float:
    """How far a share of the peak printed as x.x% may lie from one recomputed from the rate and the peak the
    benchmarks print as x.x GFLOP/s: each printed figure is within 0.05 of the one the script divided."""
    return 0.05 + 100 * (0.05 + rate * 0.05 / peak) / (peak - 0.05)


def test_gap_step_script_prints_its_share_of_the_peak(gap_step_rounds):
    matches = re.findall(r"16 tokens: step ([\d.]+) s .*, ([\d.]+) GFLOP/s; matmul peak ([\d.]+) GFLOP/s: "
                         r"([\d.]+)% of the peak", gap_step_rounds)
    assert len(matches) == 3, gap_step_rounds
    for match in matches:
        step, rate, peak, share = map(float, match)
        # A tiny model's share is a fraction of a percent, printed as 0.0% on a busy machine: check the arithmetic.
        assert step > 0 and peak > 0 and share == pytest.approx(100 * rate / peak,
                                                                abs=printed_share_rounding(rate, peak)), gap_step_rounds


def test_gap_step_rounds_print_each_share_and_their_spread(gap_step_rounds):
    shares = [float(x) for x in re.findall(r"^round \d: .*: ([\d.]+)% of the peak$", gap_step_rounds, re.MULTILINE)]
    assert len(shares) == 3, gap_step_rounds
    summary = re.search(r"over 3 rounds: median ([\d.]+)%, min ([\d.]+)%, max ([\d.]+)%", gap_step_rounds)
    assert summary, gap_step_rounds
    assert tuple(map(float, summary.groups())) == (sorted(shares)[1], min(shares), max(shares))


def test_gap_step_compare_autograd_prints_each_rounds_ratio_and_their_spread(gap_step_rounds):
    ratios = [float(x) for x in re.findall(r"^round \d: with autograd's .*: step [\d.]+ s, ([\d.]+)x ours$",
                                           gap_step_rounds, re.MULTILINE)]
    assert len(ratios) == 3, gap_step_rounds
    summary = re.search(r"3 rounds: median ([\d.]+)x, min ([\d.]+)x, max ([\d.]+)x", gap_step_rounds)
    assert summary, gap_step_rounds
    assert tuple(map(float, summary.groups())) == (sorted(ratios)[1], min(ratios), max(ratios))


def test_vocabulary_blocks_script_prints_every_shape_against_the_first():
    result = run_script("benchmarks/vocabulary_blocks.py", "--vocabulary", "300", "--hidden", "16", "--positions", "40",
                        "--rounds", "2")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\s+(\d+) x (\d+)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x", result.stdout, re.MULTILINE)
    assert len(rows) == len(SHAPES), result.stdout
    assert tuple(map(int, rows[0][:2])) == default_shape() and float(rows[0][4]) == 1.0  # FastLM's own, first
    first = float(rows[0][2])
    for _, _, ms, _, ratio in rows:  # each ratio is the first shape's median over this one's
        assert float(ms) > 0 and float(ratio) == pytest.approx(first / float(ms), rel=0.05, abs=0.01)


def test_eval_speed_rounds_print_each_rate_ratio_and_its_spread(tiny_model_dir):
    result = run_script("benchmarks/eval_speed.py", "--model", str(tiny_model_dir), "--limit", "2", "--tasks", "copa",
                        "--rounds", "3")
    assert result.returncode == 0, result.stderr
    # Each round's row: its speed-up and work ratio give its rate ratio (speed-up = work ratio x rate ratio).
    rows = re.findall(r"^copa #(\d)\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)x.*\s([\d.]+)x$", result.stdout, re.MULTILINE)
    assert [int(r[0]) for r in rows] == [1, 2, 3], result.stdout
    expected = [float(speedup) / float(work) for _, speedup, work in rows]
    summary = re.search(r"^copa\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d)/3$",
                        result.stdout, re.MULTILINE)
    assert summary, result.stdout
    *ratios, median, low, high = map(float, summary.groups()[:6])
    assert ratios == pytest.approx(expected, rel=0.02)
    assert (median, low, high) == (sorted(ratios)[1], min(ratios), max(ratios))
    assert int(summary.group(7)) == sum(x >= 1 for x in ratios)
    # The peak: once at the start, after each of the 3 rounds and before the GAP step; the highest is the one used.
    peaks = re.search(r"^float32 matmul peak: highest ([\d.]+) GFLOP/s of (\d+) measurements \(lowest ([\d.]+)\)$",
                      result.stdout, re.MULTILINE)
    assert peaks and int(peaks.group(2)) == 5 and float(peaks.group(1)) >= float(peaks.group(3)), result.stdout
    step = re.search(r"GAP step .* ([\d.]+) GFLOP/s = ([\d.]+)% of the matmul peak", result.stdout)
    rate, share, peak = float(step.group(1)), float(step.group(2)), float(peaks.group(1))
    assert share == pytest.approx(100 * rate / peak, abs=printed_share_rounding(rate, peak))


def test_eval_speed_refuses_fewer_than_one_round():
    result = run_script("benchmarks/eval_speed.py", "--rounds", "0", timeout=120)
    assert result.returncode == 2 and "--rounds must be at least 1, not 0" in result.stderr


def test_task_overhead_prints_both_renderings_and_that_they_agree(tiny_model_dir):
    result = run_script("benchmarks/task_overhead.py", "--model", str(tiny_model_dir), "--tasks", "arc_easy", "copa",
                        "--limit", "8", "--rounds", "1")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^(arc_easy|copa) +([\d.]+) +([\d.]+) +([\d.]+)x  (True|False)$", result.stdout, re.MULTILINE)
    assert [r[0] for r in rows] == ["arc_easy", "copa"], result.stdout
    for _, theirs, ours, ratio, same in rows:  # the ratio of the printed (rounded) seconds, within their rounding
        assert same == "True" and float(ratio) == pytest.approx(float(theirs) / float(ours), rel=0.05), result.stdout


def test_attention_check_counts_the_questions_that_differ_and_names_the_largest():
    ours = {0: [-1.0, -2.0], 1: [-3.0, -4.0], 2: [-5.0, -6.0]}
    theirs = {0: [-1.0, -2.0005], 1: [-3.0, -5.68], 2: [-5.25, -6.0]}
    assert differing(ours, theirs) == (2, [(1.68, 1), (0.25, 2), (0.0005, 0)])


def test_attention_check_prints_every_pair_per_task(tiny_model_dir):
    """On a CPU every pair agrees (the kernels there take our masks as HFLM's code does)."""
    result = run_script("benchmarks/attention_check.py", "--model", str(tiny_model_dir), "--device", "cpu",
                        "--tasks", "copa", "--limit", "4", "--unguarded")
    assert result.returncode == 0, result.stderr
    pairs = re.findall(r"^cpu copa \('(\w+)', '(\w+)'\) vs \('(\w+)', '(\w+)'\): (\d+) of 4 differ", result.stdout,
                       re.MULTILINE)
    assert [(p[:4], p[4]) for p in pairs] == [
        (("eager", "hf", "sdpa", "hf"), "0"), (("eager", "fast", "sdpa", "fast"), "0"),
        (("eager", "hf", "eager", "fast"), "0"), (("sdpa", "hf", "sdpa", "fast"), "0")], result.stdout


def test_repro_split_divides_each_stages_wall_time_by_the_stages_records(tmp_path):
    from repro_split import split  # noqa: E402  (a script folder, not a package)

    (tmp_path / "data/predictions/base").mkdir(parents=True)
    for task, seconds in (("copa", 10.0), ("piqa", 20.0)):
        (tmp_path / f"data/predictions/base/{task}.run.json").write_text(json.dumps({"seconds": seconds}))
    (tmp_path / "data/gap_timing.json").write_text(json.dumps({"total_seconds": 12.0}))
    walls = {"evaluate@base-copa": 15.0, "evaluate@base-piqa": 26.0, "gap": 40.0, "prepare_model": 30.0,
             "check_params": 3.0}
    kinds = split(tmp_path, walls, total=120.0)
    assert kinds["scoring (evaluate stages' own seconds)"] == 30.0
    assert kinds["evaluate: start-up, model load, writing"] == 11.0
    assert kinds["gap: ascent updates"] == 12.0 and kinds["gap: selection scoring, load, start-up"] == 28.0
    assert kinds["model preparation"] == 30.0
    assert kinds["DVC between stages (lock, hashing, cache)"] == 120.0 - sum(walls.values())
    assert sum(kinds.values()) == 120.0  # every second of the run is in one kind
