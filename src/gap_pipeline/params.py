"""The schema of params.yaml: the single source of truth for every setting of the pipeline.

Every stage validates the whole file first, so a typo fails in a second with the key, the bad value and
what is allowed, instead of an hour into a run. Defaults live in params.yaml, not here: the fields below
only say what shape a value must have.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gap_pipeline.benchmarks import ALL_TASKS, FAMILIES
from gap_pipeline.errors import ParamsError

DEFAULT_PARAMS_FILE = "params.yaml"


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelParams(_Section):
    name: str = Field(min_length=1)
    revision: str | None = None
    trust_remote_code: bool


class CorpusParams(_Section):
    """A corpus in a local file or folder; DVC hashes the source, so editing it reruns its stage."""

    source: str = Field(min_length=1)
    n: int = Field(ge=1)
    seed: int | None  # None: the first n texts in file order (the paper's)
    text_field: str
    id_field: str | None


class HubCorpusParams(_Section):
    """A corpus on the Hugging Face hub; DVC cannot hash it, so the revision pins what is read."""

    dataset: str = Field(min_length=1)
    name: str | None = None
    split: str
    revision: str | None = None
    n: int = Field(ge=1)
    seed: int
    text_field: str
    id_field: str | None


class SelectParams(_Section):
    """Best-step selection: which slice of which tasks scores each step, and how a step's scores rank."""

    criterion: Literal["last", "dialog", "classification", "both"]
    examples: int = Field(ge=0)
    tasks: list[str]

    @model_validator(mode="after")
    def _slice_fits_criterion(self) -> SelectParams:
        if self.criterion == "last":
            return self
        unknown = sorted(set(self.tasks) - set(ALL_TASKS))
        if unknown:
            raise ValueError(f"gap.select.tasks has unknown task(s) {unknown}; allowed: {list(ALL_TASKS)}")
        if self.examples < 1:
            raise ValueError(f"gap.select.examples = {self.examples}: criterion {self.criterion!r} needs at "
                             "least 1 example per task; use criterion 'last' to skip selection")
        needed = list(FAMILIES) if self.criterion == "both" else [self.criterion]
        for family in needed:
            if not set(FAMILIES[family]) & set(self.tasks):
                raise ValueError(f"gap.select.criterion = {self.criterion!r} needs a {family} task in "
                                 f"gap.select.tasks (one of {list(FAMILIES[family])}), got {self.tasks}")
        return self


class GapParams(_Section):
    corpus: str = Field(min_length=1)
    index: int = Field(ge=0)
    steps: int = Field(ge=0)
    lr: float = Field(gt=0)
    betas: tuple[float, float]
    max_length: int = Field(ge=2)
    loss_ceiling: float | None = Field(gt=0)
    seed: int
    select: SelectParams

    @model_validator(mode="after")
    def _betas_in_range(self) -> GapParams:
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must both lie in [0, 1), got {list(self.betas)}")
        return self


class RuntimeParams(_Section):
    device: str = Field(pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    dtype: Literal["auto", "float32", "bfloat16", "float16"]
    threads: int = Field(ge=0)


class TaskParams(_Section):
    split: str = Field(min_length=1)
    limit: int | None = Field(ge=1)


class EvalParams(_Section):
    source: Literal["local", "hub"]
    data_dir: str = Field(min_length=1)
    model_class: Literal["fast", "hf"]
    batch_size: int = Field(ge=1)
    seed: int
    tasks: dict[str, TaskParams]

    @model_validator(mode="after")
    def _known_tasks(self) -> EvalParams:
        unknown = sorted(set(self.tasks) - set(ALL_TASKS))
        if unknown:
            raise ValueError(f"eval.tasks has unknown task(s) {unknown}; allowed: {list(ALL_TASKS)}")
        return self


class ReferenceParams(_Section):
    """Models scored on the same tasks but never post-trained: the larger model GAP is compared with."""

    models: list[str]


class Params(_Section):
    model: ModelParams
    reference: ReferenceParams
    corpora: dict[str, CorpusParams]
    hub_corpora: dict[str, HubCorpusParams] = Field(default_factory=dict)
    gap: GapParams
    runtime: RuntimeParams
    eval: EvalParams

    @model_validator(mode="after")
    def _corpus_names(self) -> Params:
        clash = sorted(set(self.corpora) & set(self.hub_corpora))
        if clash:
            raise ValueError(f"corpus names must be unique across corpora and hub_corpora, both have {clash}")
        if self.gap.corpus not in self.all_corpora:
            raise ValueError(
                f"gap.corpus = {self.gap.corpus!r} is not a corpus; allowed: {sorted(self.all_corpora)}"
            )
        return self

    @property
    def all_corpora(self) -> dict[str, CorpusParams | HubCorpusParams]:
        return {**self.corpora, **self.hub_corpora}


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    value = error.get("input")
    if error["type"] == "missing":
        return f"{key}: missing; add it to params.yaml"
    if error["type"] == "extra_forbidden":
        return f"{key} = {value!r}: unknown key (a typo?); remove it or fix its name"
    # A whole section failed a cross-field check: its message names the keys; echoing the section would bury it.
    where = f"{key} = {value!r}: " if key and not isinstance(value, dict) else ""
    return where + error["msg"].removeprefix("Value error, ")


def parse_params(raw: dict[str, Any], source: str = DEFAULT_PARAMS_FILE) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors(include_url=False))
        raise ParamsError(f"{source}: {problems}") from None


def load_params(path: str | os.PathLike = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate params.yaml; raise ParamsError naming every bad key at once."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such file; run the stage from the project root")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, str(path))
