"""The schema of params.yaml: the single source of truth for every setting of the pipeline.

Every stage validates the whole file first, so a typo fails in a second with the key, the bad value and
what is allowed, instead of an hour into a run. Defaults live in params.yaml, not here: the fields below
only say what shape a value must have.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gap_pipeline.core.errors import ParamsError
from gap_pipeline.core.tasks import ALL_TASKS, FAMILIES

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

    criterion: Literal["last", "dialogue", "classification", "both"]
    protocol: Literal["disjoint", "paper"]
    split: str = Field(min_length=1)
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


# An Adam beta: a decay rate in [0, 1). Declared on the type, so the schema (and the tests generated from it) knows.
Beta = Annotated[float, Field(ge=0, lt=1)]


class GapParams(_Section):
    corpus: str = Field(min_length=1)
    index: int = Field(ge=0)
    steps: int = Field(ge=0)
    lr: float = Field(gt=0)
    betas: tuple[Beta, Beta]
    max_length: int = Field(ge=2)
    loss_ceiling: float | None = Field(gt=0)
    seed: int
    select: SelectParams
    trajectory: bool


class RuntimeParams(_Section):
    device: str = Field(pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    dtype: Literal["auto", "float32", "bfloat16", "float16"]
    threads: int = Field(ge=0)


class TaskParams(_Section):
    split: str = Field(min_length=1)
    limit: int | None = Field(ge=1)


class PrecisionParams(_Section):
    """How choices are scored: in runtime.dtype, or bfloat16 checked by float32 (bound measured, then widened)."""

    mode: Literal["model", "bf16-verified"]
    calibration: int = Field(ge=1)
    safety: float = Field(ge=1)


class EvalParams(_Section):
    source: Literal["local", "hub"]
    model_class: Literal["auto", "fast", "hf"]
    precision: PrecisionParams
    batch_size: int = Field(ge=1)
    seed: int
    tasks: dict[str, TaskParams]

    @model_validator(mode="after")
    def _known_tasks(self) -> EvalParams:
        unknown = sorted(set(self.tasks) - set(ALL_TASKS))
        if unknown:
            raise ValueError(f"eval.tasks has unknown task(s) {unknown}; allowed: {list(ALL_TASKS)}")
        return self


class DataParams(_Section):
    """Where the benchmark splits come from; import_benchmarks validates and copies them into data/benchmarks."""

    benchmarks: str = Field(min_length=1)


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
    data: DataParams
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


def load_params(path: str | os.PathLike = DEFAULT_PARAMS_FILE) -> TrackedParams:
    """Read and validate params.yaml; raise ParamsError naming every bad key at once.

    The result records the keys read through it, so a test can hold each stage's ``params`` in dvc.yaml to
    what the stage really reads.
    """
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such file; run the stage from the project root")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return TrackedParams(parse_params(raw, str(path)))


class TrackedParams:
    """A read-only view of validated params that remembers every key read through it.

    A leaf value (a number, a string, a list) records its dotted key; ``model_dump`` records the whole section;
    iterating a mapping (``corpora``, ``eval.tasks``) records the mapping, and asking whether it holds a key
    records that key. ``keys_read`` returns them all.
    """

    def __init__(self, value: BaseModel, path: str = "", log: set[str] | None = None):
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_log", set() if log is None else log)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(type(self._value), name, None)
        if isinstance(attribute, property):  # computed from fields: let the fields it reads record themselves
            return attribute.fget(self)
        return _track(getattr(self._value, name), _join(self._path, name), self._log)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"params are read-only; set {_join(self._path, name)} in params.yaml")

    def model_dump(self, exclude: set[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """The section as plain data; ``exclude`` leaves fields out, and unread (their changes rerun nothing)."""
        if exclude:
            self._log.update(_join(self._path, f) for f in type(self._value).model_fields if f not in exclude)
        else:
            self._log.update([self._path] if self._path else type(self._value).model_fields)
        return self._value.model_dump(exclude=exclude, **kwargs)

    def keys_read(self) -> set[str]:
        return set(self._log)


class MissingParamError(ParamsError, KeyError):
    """A key asked of a params mapping that is not there (a KeyError too, so ``Mapping.get`` still works)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TrackedMapping(Mapping):
    """A mapping section of params (``corpora``, ``eval.tasks``) that records what is read, as TrackedParams."""

    def __init__(self, value: Mapping[str, Any], path: str, log: set[str]):
        self._value, self._path, self._log = value, path, log

    def __getitem__(self, key: str) -> Any:
        if key not in self._value:
            self._log.add(_join(self._path, key))  # its absence decides as much as its value would
            raise MissingParamError(f"params.yaml has no {_join(self._path, key)}; the keys under {self._path} are "
                                    f"{sorted(self._value)}")
        return _track(self._value[key], _join(self._path, key), self._log)

    def __contains__(self, key: object) -> bool:
        self._log.add(_join(self._path, str(key)))
        return key in self._value

    def __iter__(self) -> Iterator[str]:
        self._log.add(self._path)
        return iter(self._value)

    def __len__(self) -> int:
        self._log.add(self._path)
        return len(self._value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _track(value: Any, path: str, log: set[str]) -> Any:
    if isinstance(value, BaseModel):
        return TrackedParams(value, path, log)
    if isinstance(value, Mapping):
        return TrackedMapping(value, path, log)
    log.add(path)
    return value
