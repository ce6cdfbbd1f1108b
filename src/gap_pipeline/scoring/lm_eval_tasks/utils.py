"""lm-eval hooks for our tasks; the dialogue logic lives in gap_pipeline.scoring.dialogue, unit-tested there.

lm-eval calls ``custom_dataset`` functions with the task's metadata (``--metadata`` merged with ``--model_args``)
and its ``dataset_kwargs``, so the data folder arrives as metadata, never relative to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gap_pipeline.core.errors import DataNotFoundError
from gap_pipeline.scoring.dialogue import build_prompt, cut_reply, split_dialogue, unigram_f1

BENCHMARKS_ENV = "GAP_BENCHMARKS"
# An editable install of the pipeline: the project's imported splits (`dvc repro import_benchmarks` or
# `dvc pull` writes them), found from this file rather than from the working directory.
PROJECT_BENCHMARKS = Path(__file__).resolve().parents[4] / "data" / "benchmarks"


def benchmarks_folder(benchmarks: str | os.PathLike | None = None) -> Path:
    """Where the splits are: the ``benchmarks`` metadata, else $GAP_BENCHMARKS, else the project's imported copy."""
    chosen = benchmarks or os.environ.get(BENCHMARKS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    if PROJECT_BENCHMARKS.is_dir():
        return PROJECT_BENCHMARKS
    raise DataNotFoundError(
        "no benchmark folder given: pass --metadata benchmarks=DIR (or set GAP_BENCHMARKS=DIR), DIR holding "
        "<task>/<split>.jsonl as the pipeline's data/benchmarks does"
    )


def load_split(task: str, split: str, benchmarks: str | None = None, **_metadata: Any):
    """``{split: Dataset}`` of ``<benchmarks>/<task>/<split>.jsonl``; the other metadata (model_args) is not ours."""
    import datasets

    data_file = benchmarks_folder(benchmarks) / task / f"{split}.jsonl"
    if not data_file.is_file():
        raise DataNotFoundError(
            f"no {split} split for task {task!r} at {data_file}; point --metadata benchmarks=DIR (params.yaml: "
            f"data.benchmarks) at a folder holding {task}/{split}.jsonl"
        )
    return datasets.load_dataset("json", data_files={split: str(data_file.resolve())})


def load_reply_split(task: str, split: str, benchmarks: str | None = None, tokenizer: Any = None,
                     pretrained: Any = None, **_metadata: Any):
    """The dialogue split with each gold reply's token count, which the per-token reply loss divides by.

    The tokenizer is the scored model's: ``tokenizer`` or ``pretrained`` from the metadata, as lm-eval's own
    length-aware tasks (RULER) read it.
    """
    from transformers import AutoTokenizer

    name = tokenizer or pretrained
    if not isinstance(name, (str, os.PathLike)):
        raise DataNotFoundError(
            f"{task}_reply_loss needs the model's tokenizer to count reply tokens: pass --model_args "
            "pretrained=DIR or --metadata tokenizer=NAME"
        )
    tokenize = AutoTokenizer.from_pretrained(str(name))
    dataset = load_split(task, split, benchmarks)
    return dataset.map(lambda doc: {"reply_tokens": len(
        tokenize(reply_continuation(doc), add_special_tokens=False).input_ids)})


def doc_to_text(doc: dict) -> str:
    return build_prompt(split_dialogue(doc["text"])[0])


def doc_to_target(doc: dict) -> str:
    return split_dialogue(doc["text"])[1]


def reply_continuation(doc: dict) -> str:
    """The gold reply as the continuation scored after the transcript: lm-eval adds no ``target_delimiter`` to
    ``loglikelihood`` requests, and the generated reply follows the same space."""
    return " " + doc_to_target(doc)


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    return {"f1": unigram_f1(cut_reply(results[0]), doc_to_target(doc))}


def reply_loss_results(doc: dict, results: list[tuple[float, bool]]) -> dict[str, tuple[float, int]]:
    """The gold reply's summed log-likelihood and its token count; ``token_mean_loss`` weighs them."""
    loglikelihood, _greedy = results[0]
    return {"reply_loss": (float(loglikelihood), int(doc["reply_tokens"]))}


def token_mean_loss(items: list[tuple[float, int]]) -> float:
    """Mean loss per reply token over all replies: long replies count by their length, as in training."""
    return -sum(ll for ll, _ in items) / sum(n for _, n in items)
