"""The gap stage's work: load the base model and one sampled text, run the ascent, save model and metrics."""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from gap_pipeline.core.checks import refuse_text_index
from gap_pipeline.core.io import atomic_path, read_jsonl, write_json, write_table
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.runtime import configure_cpu, resolve_device, resolve_dtype, seed_everything
from gap_pipeline.gap.ascent import AscentResult, StepLog, encode_text, gradient_ascent
from gap_pipeline.gap.selection import BestStep, selection_columns
from gap_pipeline.models import MODEL_INFO_FILE, load_model, save_model
from gap_pipeline.scoring.evaluate import resolve_model_class


@dataclass
class AscentSetup:
    """The seeded machine, the base model and the text's token ids, as the gap and trajectory stages start."""

    model: Any
    tokenizer: Any
    doc: dict[str, Any]
    input_ids: Any
    device: Any
    dtype: Any

    @classmethod
    def load(cls, params: TrackedParams, model_dir: Path, corpus_file: Path) -> AscentSetup:
        """Threads, seed, device and dtype from params; one model load; the text ``gap.index``, encoded."""
        gap, runtime = params.gap, params.runtime
        configure_cpu(runtime.threads)
        seed_everything(gap.seed)
        device = resolve_device(runtime.device)
        dtype = resolve_dtype(runtime.dtype, device)
        doc = pick_text(corpus_file, gap.index)
        model, tokenizer = load_model(model_dir, device, dtype, params.model.trust_remote_code)
        input_ids = encode_text(tokenizer, doc["text"], gap.max_length, doc["doc_id"]).to(device)
        return cls(model, tokenizer, doc, input_ids, device, dtype)


def pick_text(corpus_file: Path, index: int) -> dict[str, Any]:
    docs = read_jsonl(corpus_file)
    refuse_text_index(index, len(docs), str(corpus_file))
    return docs[index]


def _json_number(value: float | None) -> float | str | None:
    return value if value is None or math.isfinite(value) else str(value)


def summarize(result: AscentResult, tokens: int, kept_step: int) -> dict[str, Any]:
    """train.json: the run's results, which `dvc metrics diff` compares; an identical rerun writes the same."""
    kept_loss = result.logs[kept_step].loss
    return {
        "steps": kept_step,
        "steps_run": result.kept_step,
        "tokens": tokens,
        "initial_loss": result.logs[0].loss,
        "final_loss": kept_loss,
        "loss_gain": kept_loss - result.logs[0].loss,
        "diverged": result.diverged,
        "diverged_step": result.diverged_step,
        # JSON has no NaN: a non-finite loss is written as the string "nan" or "inf".
        "diverged_loss": _json_number(result.diverged_loss),
    }


def timing(result: AscentResult, tokens: int) -> dict[str, Any]:
    """How long the updates took: provenance for the timing record (per step: steps.tsv), never a metric."""
    seconds = [log.seconds for log in result.logs if log.seconds is not None]
    median = statistics.median(seconds) if seconds else None
    return {"seconds_per_step": median, "tokens_per_second": tokens / median if median else None,
            "total_seconds": sum(seconds)}


def post_train(
    params: TrackedParams, model_dir: Path, corpus_file: Path, benchmarks: Path, out_dir: Path, metrics_dir: Path,
    timing_file: Path, run_file: Path,
) -> dict:
    """Run GAP as params.yaml says; writes ``out_dir`` (the kept weights, config and tokenizer), ``metrics_dir``,
    ``timing_file`` and ``run_file`` (the params, the text and the metrics of the run).

    ``benchmarks`` holds the imported splits the selection slice is read from. Everything but ``timing_file`` (and
    the seconds in steps.tsv) is the same on an identical rerun, so a forced rerun changes no later stage's inputs.
    The run record lies beside the model directory, not in it: the evaluate stages depend on the directory, so a
    param that leaves the kept weights as they were (more steps that keep the same one, a ceiling never reached)
    reruns no evaluation.
    """
    gap = params.gap
    setup = AscentSetup.load(params, model_dir, corpus_file)
    model, tokenizer, doc, input_ids, device, dtype = (setup.model, setup.tokenizer, setup.doc, setup.input_ids,
                                                       setup.device, setup.dtype)

    best = None if gap.select.criterion == "last" else BestStep.for_model(params, model, tokenizer, benchmarks)
    result = gradient_ascent(model, input_ids, gap.steps, gap.lr, gap.betas, gap.loss_ceiling,
                             on_step=None if best is None else best.on_step)
    kept = result.kept_step if best is None else best.restore(model)
    summary = summarize(result, input_ids.numel(), kept)
    if best is not None:
        summary["selection"] = best.summary()

    base_info = (model_dir / MODEL_INFO_FILE).read_text(encoding="utf-8")
    run_info = {
        "gap": gap.model_dump(exclude={"trajectory"}),  # the trajectory stage's switch changes no weight
        "text": {"corpus": gap.corpus, "doc_id": doc["doc_id"], "source_row": doc.get("source_row")},
        "base_model": json.loads(base_info),
        "metrics": summary,
    }
    with atomic_path(out_dir, directory=True) as tmp:
        save_model(model, tokenizer, tmp)
        # Same architecture and size as the base: every model directory describes itself the same way.
        (tmp / MODEL_INFO_FILE).write_text(base_info, encoding="utf-8")
    write_json(run_file, run_info)
    write_json(metrics_dir / "train.json", summary)
    run_on = {"device": device.type, "dtype": str(dtype).removeprefix("torch.")}
    if best is not None:  # the class that scored the selection slice, `auto` resolved
        run_on["model_class"] = resolve_model_class(params.eval.model_class, device)
    write_json(timing_file, timing(result, input_ids.numel()) | run_on)
    write_table(metrics_dir / "steps.tsv", [asdict(log) for log in result.logs], [f.name for f in fields(StepLog)])
    write_table(metrics_dir / "selection.tsv", best.curve if best else [],
                selection_columns(gap.select) if best else ["step", "criterion"])
    print(f"GAP on {gap.corpus}[{gap.index}] (doc_id {doc['doc_id']}): loss {summary['initial_loss']:.3f} -> "
          f"{summary['final_loss']:.3f}, kept step {kept} of {result.kept_step}")
    if result.diverged:
        print(f"warning: the loss at step {result.diverged_step} was {result.diverged_loss} (gap.loss_ceiling = "
              f"{gap.loss_ceiling}); kept step {result.kept_step}, the last one within bounds", file=sys.stderr)
    return summary
