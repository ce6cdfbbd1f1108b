"""Side-by-side benchmark: lm-eval's HFLM against our FastLM, and a GAP step against the machine's matmul peak.

Both model classes score the same model, tasks, split, limit and batch size in this one process, one after
the other, so the ratios compare like with like. Per task it prints seconds each, the speed ratio, the share
of examples with the same predicted choice (or the same generated reply), the largest log-likelihood
difference (for the dialogue tasks: of each gold reply's per-token loss), the score of each, the achieved
GFLOP/s of each against the matmul peak of its dtype and device (measured in the same run), and the work ratio:
how many times our matmul FLOPs HFLM runs. The speed-up is the work ratio times the ratio of achieved rates,
which shows how much of a gain comes from doing less and how much from doing it faster. Run it on an idle
machine:

    .venv/bin/python benchmarks/eval_speed.py --model smollm2-135m --limit 64

``--ours-dtype bfloat16`` scores ours with a bfloat16 copy of the model (HFLM stays float32), to measure what
the optional reduced precision buys and how many predictions it changes; each class's rate is then compared
with the matmul peak of its own dtype.

The matmul peak is measured at the start, after every task and before the GAP step, and the highest counts: a
peak measured once, while the shared VM is slowed by a neighbour, once read 143 GFLOP/s instead of ~190 and put
every share of it above 100%. The rate ratios below compare the two classes in the same dtype, so no peak
enters them.

``--rounds N`` scores every task N times, alternating which class runs first, and prints each task's rate ratio
in every round with its median and range: one run moves a task's ratio by up to about 0.2 on a shared VM, so
"ours runs at or above HFLM's rate" needs the spread, not one round.

``--verified`` also scores each multiple-choice task with ``eval.precision.mode: bf16-verified`` (calibration and
safety from params.yaml) and prints its seconds, its speed-up over HFLM and over ours in float32, the share of
questions it re-scored in float32, and whether its picks and metric values equal ours in float32.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from gap_step import body_matmul_params, matmul_peak_gflops, step_gflop, time_gap_steps  # beside this file

from gap_pipeline.core.params import load_params
from gap_pipeline.core.runtime import configure_cpu
from gap_pipeline.core.tasks import CLASSIFICATION_TASKS, DIALOGUE_TASKS
from gap_pipeline.corpora import read_local_corpus
from gap_pipeline.gap.ascent import encode_text
from gap_pipeline.models import load_model, prepare_model
from gap_pipeline.scoring.evaluate import evaluate_task, make_lm, verified_lm
from gap_pipeline.scoring.task_config import TaskRun

SHARED = Path(__file__).resolve().parents[2] / "shared"


def model_directory(model: str, scratch: Path) -> Path:
    """``model`` itself when it is a prepared model directory, else ``model.name`` prepared into ``scratch``."""
    if Path(model).is_dir():
        return Path(model)
    prepare_model(model, scratch / "model", scratch)
    return scratch / "model"


class MatmulWork:
    """Counts the tokens the transformer body runs and the logits the vocabulary head computes.

    FLOPs are 2 x parameters per token for the body and 2 x hidden per logit the head computes (a position
    projected onto the whole vocabulary, or onto a slice of it at a time as FastLM does, through the same module);
    attention scores are left out: they are small at these lengths. Whatever the model class does.
    """

    def __init__(self, model: torch.nn.Module):
        self.body_params = body_matmul_params(model)
        self.hidden_size = model.get_output_embeddings().weight.shape[1]
        self.tokens = self.logits = 0
        self.passes: list[tuple[int, int]] = []
        self._hooks = [
            model.get_decoder().register_forward_pre_hook(self._count_tokens, with_kwargs=True),
            model.get_output_embeddings().register_forward_hook(self._count_projected),
        ]

    def _count_tokens(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        shape = tuple(ids.shape) if ids is not None else tuple(kwargs["inputs_embeds"].shape[:-1])
        self.passes.append(shape)  # (rows, tokens per row) of each pass, for benchmarks/eval_profile.py
        self.tokens += shape[0] * shape[1]

    def _count_projected(self, module, args, output):
        self.logits += output.numel()

    def take_gflop(self) -> float:
        flop = 2 * self.body_params * self.tokens + 2 * self.hidden_size * self.logits
        self.tokens = self.logits = 0
        return flop / 1e9

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()


def compare_task(task: str, models: dict[str, tuple[torch.nn.Module, MatmulWork]], tokenizer, limit: int,
                 batch_size: int, seed: int, benchmarks: Path = SHARED / "benchmarks", hf_first: bool = True) -> dict:
    """Both classes on one task; ``models`` maps each class ("hf", "fast") to the model it scores and its counter.

    ``hf_first`` picks which class runs first: alternating it over rounds spreads a drift in the machine's speed
    (another tenant, a warming cache) over both classes instead of charging it to one.
    """
    run = TaskRun(task, "validation", limit, benchmarks)
    out = {}
    for name in ("hf", "fast") if hf_first else ("fast", "hf"):
        model, work = models[name]
        lm = make_lm(name, model, tokenizer, batch_size)
        work.take_gflop()
        start = time.perf_counter()
        record, predictions = evaluate_task(lm, tokenizer, run, seed)
        seconds = time.perf_counter() - start
        out[name] = {"seconds": seconds, "gflop": work.take_gflop(), "record": record,
                     "predictions": sorted(predictions, key=lambda p: p["doc_id"])}
    hf, fast = out["hf"]["predictions"], out["fast"]["predictions"]
    if task in DIALOGUE_TASKS:
        same = sum(a["reply"] == b["reply"] for a, b in zip(hf, fast, strict=True))
        # The gold reply's per-token loss (a mean of log-likelihoods) is the dialogue tasks' log-likelihood.
        largest = max(abs(a["reply_loss"] - b["reply_loss"]) for a, b in zip(hf, fast, strict=True))
        metric = "f1"
    else:
        same = sum(a["predicted"] == b["predicted"] for a, b in zip(hf, fast, strict=True))
        largest = max(abs(x - y) for a, b in zip(hf, fast, strict=True)
                      for x, y in zip(a["loglikelihoods"], b["loglikelihoods"], strict=True))
        metric = "acc"
    return {
        "task": task, "examples": len(hf), "same": same / len(hf), "largest_ll_diff": largest,
        "hf_s": out["hf"]["seconds"], "fast_s": out["fast"]["seconds"],
        "work_ratio": out["hf"]["gflop"] / out["fast"]["gflop"],
        "hf_gflops": out["hf"]["gflop"] / out["hf"]["seconds"],
        "fast_gflops": out["fast"]["gflop"] / out["fast"]["seconds"],
        "hf_score": out["hf"]["record"]["metrics"][metric], "fast_score": out["fast"]["record"]["metrics"][metric],
        "fast_predictions": fast, "fast_metrics": out["fast"]["record"]["metrics"], "dtype": models["fast"][0].dtype,
    }


def compare_verified(task: str, model, tokenizer, limit: int, params, fast: dict, benchmarks: Path) -> dict:
    """bf16-verified on one choice task against ours in float32.

    ``model`` is float32; ``fast`` is that task's compare_task row: its own predictions are the reference when it
    scored in float32, else ours is run here in float32 first (and timed).
    """
    run = TaskRun(task, "validation", limit, benchmarks)
    settings = params.eval
    exact = make_lm("fast", model, tokenizer, settings.batch_size)
    if fast["dtype"] != torch.float32:
        start = time.perf_counter()
        record, predictions = evaluate_task(exact, tokenizer, run, settings.seed)
        fast = fast | {"fast_s": time.perf_counter() - start, "fast_metrics": record["metrics"],
                       "fast_predictions": sorted(predictions, key=lambda p: p["doc_id"])}
    start = time.perf_counter()
    lm = verified_lm(exact, settings.precision.calibration, settings.precision.safety)  # the copy counts too
    record, predictions = evaluate_task(lm, tokenizer, run, settings.seed)
    seconds = time.perf_counter() - start
    ours = sorted(predictions, key=lambda p: p["doc_id"])
    same = sum(a["predicted"] == b["predicted"] and a.get("acc_norm") == b.get("acc_norm")
               for a, b in zip(ours, fast["fast_predictions"], strict=True))
    metrics = {k: v for k, v in record["metrics"].items() if k != "rescored"}
    return {"task": task, "seconds": seconds, "fp32_s": fast["fast_s"],
            "vs_hf": fast["hf_s"] / seconds, "vs_fast": fast["fast_s"] / seconds,
            "rescored": record["metrics"]["rescored"] / len(ours), "same": same / len(ours),
            "metrics_equal": metrics == fast["fast_metrics"], "k": record["run"]["bf16_gap_error"]["k"]}


def format_verified(v: dict) -> str:
    k = " ".join(f"{m}={x:.3f}" for m, x in v["k"].items())
    return (f"{v['task']:22}{v['seconds']:9.1f}{v['vs_hf']:9.2f}x{v['vs_fast']:9.2f}x{v['rescored']:10.1%}"
            f"{v['same']:8.1%}  {'yes' if v['metrics_equal'] else 'NO':6}{k}")


def row_label(r: dict) -> str:
    return r["task"] if r.get("round") is None else f"{r['task']} #{r['round']}"


def format_row(r: dict) -> str:
    return (f"{row_label(r):22}{r['examples']:5d}{r['hf_s']:9.1f}{r['fast_s']:9.1f}{r['hf_s'] / r['fast_s']:8.2f}x"
            f"{r['same']:8.1%}{r['largest_ll_diff']:10.2e}{r['hf_score']:7.3f}{r['fast_score']:7.3f}"
            f"{r['hf_gflops']:11.1f}{r['fast_gflops']:11.1f}{r['work_ratio']:6.2f}x")


def rate_ratio(row: dict, peak: float, ours_peak: float) -> float:
    """Ours' share of its dtype's matmul peak over HFLM's share of its own: above 1, ours runs its work faster."""
    return (row["fast_gflops"] / ours_peak) / (row["hf_gflops"] / peak)


def print_rate_ratios(rows: list[dict], peak: float, ours_peak: float) -> None:
    """Each task's rate ratio in every round, their median and range, and in how many rounds ours was at or above."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    rounds = max(r["round"] for r in rows)
    print(f"\nrate ratio ours/HFLM (share of the matmul peak), per round; odd rounds ran HFLM first, even ours\n"
          f"{'task':22}" + "".join(f"{'#' + str(i):>7}" for i in range(1, rounds + 1))
          + f"{'median':>8}{'min':>7}{'max':>7}  rounds >= 1")
    at_or_above = 0
    for task in tasks:
        ratios = [rate_ratio(r, peak, ours_peak) for r in rows if r["task"] == task]
        above = sum(x >= 1 for x in ratios)
        at_or_above += statistics.median(ratios) >= 1
        print(f"{task:22}" + "".join(f"{x:7.3f}" for x in ratios)
              + f"{statistics.median(ratios):8.3f}{min(ratios):7.3f}{max(ratios):7.3f}  {above}/{len(ratios)}")
    print(f"median rate ratio at or above 1 on {at_or_above}/{len(tasks)} tasks")


def gap_step(model, tokenizer, params,
             corpus: Path = SHARED / "corpora" / "github.jsonl") -> tuple[float, float, float, int]:
    """Median and first seconds of 8 GAP steps on the corpus's longest text, and one step's GFLOP.

    It post-trains ``model`` in place: run it last.
    """
    # The longest GitHub text (407 tokens for SmolLM2; the median is ~170): big matmuls, as on 512-token texts.
    texts = [encode_text(tokenizer, d["text"], params.gap.max_length) for d in
             read_local_corpus(corpus) if d["text"].strip()]
    ids = max(texts, key=lambda t: t.numel())
    median, first = time_gap_steps(model, ids, params.gap.lr, params.gap.betas)
    return median, first, step_gflop(model, ids.numel()), ids.numel()


class Peaks:
    """The matmul peak of each dtype measured now and then, keeping the highest: the machine's ceiling."""

    def __init__(self, device: str):
        self.device = device
        self.measured: dict[torch.dtype, list[float]] = {}

    def measure(self, dtype: torch.dtype) -> float:
        self.measured.setdefault(dtype, []).append(matmul_peak_gflops(dtype, self.device))
        return self.measured[dtype][-1]

    def measure_all(self) -> None:
        for dtype in self.measured:
            self.measure(dtype)

    @property
    def best(self) -> dict[torch.dtype, float]:
        return {dtype: max(rates) for dtype, rates in self.measured.items()}

    def summary(self) -> str:
        return "; ".join(f"{str(dtype).removeprefix('torch.')} matmul peak: highest {max(rates):.1f} GFLOP/s of "
                         f"{len(rates)} measurements (lowest {min(rates):.1f})"
                         for dtype, rates in self.measured.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model.name, or a prepared model directory")
    parser.add_argument("--limit", type=int, default=64, help="examples per task")
    parser.add_argument("--tasks", nargs="*", default=[*CLASSIFICATION_TASKS, *DIALOGUE_TASKS],
                        help="tasks to compare; none (`--tasks` alone) measures only the GAP step")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="the dtype HFLM, ours and the GAP step run in")
    parser.add_argument("--ours-dtype", choices=["float32", "bfloat16"], default=None,
                        help="the dtype FastLM scores in, if not --dtype")
    parser.add_argument("--benchmarks", type=Path, default=SHARED / "benchmarks",
                        help="folder of <task>/validation.jsonl")
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpora" / "github.jsonl",
                        help="the GAP step runs on this corpus's longest text")
    parser.add_argument("--rounds", type=int, default=1,
                        help="score each task this many times, alternating which class goes first, and print each "
                             "task's rate ratio (ours/HFLM share of the peak) in every round with its spread")
    parser.add_argument("--verified", action="store_true",
                        help="also score the multiple-choice tasks with eval.precision.mode: bf16-verified")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    dtype, ours_dtype = getattr(torch, args.dtype), getattr(torch, args.ours_dtype or args.dtype)
    device = torch.device(args.device)
    params = load_params()
    configure_cpu(params.runtime.threads)  # as the pipeline's stages run, for both model classes alike
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = model_directory(args.model, Path(scratch))
        peaks = Peaks(args.device)
        peak = peaks.measure(dtype)
        print(f"model {args.model} on {args.device}; {torch.get_num_threads()} threads; {args.dtype} matmul peak "
              f"{peak:.1f} GFLOP/s (measured again after every task; the highest counts)")
        model, tokenizer = load_model(model_dir, device, dtype)
        hf = (model, MatmulWork(model))
        fast, ours_peak = hf, peak
        if ours_dtype != dtype:
            ours_peak = peaks.measure(ours_dtype)
            print(f"ours in {ours_dtype}: matmul peak {ours_peak:.1f} GFLOP/s")
            ours = load_model(model_dir, device, ours_dtype)[0]
            fast = (ours, MatmulWork(ours))
        exact = model if dtype == torch.float32 else None  # bf16-verified's float32 model, loaded when needed
        rows, verified = [], []
        for task in args.tasks:  # each row printed as it comes, so a long run that dies still leaves its rows
            for round_ in range(1, args.rounds + 1):
                row = compare_task(task, {"hf": hf, "fast": fast}, tokenizer, args.limit, params.eval.batch_size,
                                   params.eval.seed, args.benchmarks, hf_first=round_ % 2 == 1)
                rows.append(row | {"round": round_ if args.rounds > 1 else None})
                print(f"done: {format_row(rows[-1])}", flush=True)
                peaks.measure_all()
            if args.verified and task in CLASSIFICATION_TASKS:
                if exact is None:
                    exact = load_model(model_dir, device, torch.float32)[0]
                verified.append(compare_verified(task, exact, tokenizer, args.limit, params, rows[-1], args.benchmarks))
                print(f"done: {format_verified(verified[-1])}", flush=True)
        for work in {hf[1], fast[1]}:  # one counter when both classes score the same model
            work.close()
        del exact
        peaks.measure_all()
        step_s, first_s, step_gflop, tokens = gap_step(model, tokenizer, params, corpus=args.corpus)
        peak, ours_peak = peaks.best[dtype], peaks.best[ours_dtype]
    print(f"\n{peaks.summary()}")
    print(f"\n{'task':22}{'n':>5}{'HFLM s':>9}{'ours s':>9}{'speedup':>9}{'same':>8}{'max|dLL|':>10}"
          f"{'HFLM':>7}{'ours':>7}{'HFLM GF/s':>11}{'ours GF/s':>11}{'work':>7}")
    for r in rows:
        print(format_row(r))
    for label, group in (("multiple choice", CLASSIFICATION_TASKS), ("dialogue", DIALOGUE_TASKS)):
        chosen = [r for r in rows if r["task"] in group]
        if chosen:
            hf_s, fast_s = sum(r["hf_s"] for r in chosen), sum(r["fast_s"] for r in chosen)
            hf_gflop = sum(r["hf_gflops"] * r["hf_s"] for r in chosen)
            fast_gflop = sum(r["fast_gflops"] * r["fast_s"] for r in chosen)
            # speed-up = work ratio x efficiency ratio: fewer FLOPs, or the same FLOPs at a higher rate.
            print(f"{label}: HFLM {hf_s:.1f} s, ours {fast_s:.1f} s: {hf_s / fast_s:.2f}x "
                  f"(HFLM runs {hf_gflop / fast_gflop:.2f}x our matmul FLOPs, at "
                  f"{hf_gflop / hf_s / peak:.1%} of the peak; ours at {fast_gflop / fast_s / ours_peak:.1%})")
    if args.rounds > 1:
        print_rate_ratios(rows, peak, ours_peak)
    if verified:
        print(f"\nbf16-verified (calibration {params.eval.precision.calibration}, safety "
              f"{params.eval.precision.safety}):\n{'task':22}{'s':>9}{'vs HFLM':>10}{'vs fp32':>10}{'re-scored':>10}"
              f"{'same':>8}  {'equal':6}k (measured gap error per sqrt-token)")
        for v in verified:
            print(format_verified(v))
        hf_s = sum(r["hf_s"] for r in rows if r["task"] in {v["task"] for v in verified})
        fast_s = sum(v["fp32_s"] for v in verified)
        v_s = sum(v["seconds"] for v in verified)
        print(f"bf16-verified over these tasks: {v_s:.1f} s, {hf_s / v_s:.2f}x HFLM, {fast_s / v_s:.2f}x ours in "
              f"float32; {sum(v['same'] == 1 for v in verified)}/{len(verified)} tasks with every pick float32's")
    print(f"GAP step ({tokens} tokens): {step_s:.2f} s (median of 8; the first took {first_s:.2f} s), "
          f"{step_gflop / step_s:.1f} GFLOP/s = {step_gflop / step_s / peak:.1%} of the matmul peak")
    for r in rows:
        print(f"{row_label(r)} ours/peak {r['fast_gflops'] / ours_peak:.1%}, HFLM/peak {r['hf_gflops'] / peak:.1%}")


if __name__ == "__main__":
    main()
