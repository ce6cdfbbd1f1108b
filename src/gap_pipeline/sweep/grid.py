"""The grid of a sweep: one GAP run per (model, corpus, text index), each with a name that says its params."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from gap_pipeline.core.errors import ParamsError


def parse_indices(spec: str) -> list[int]:
    """``"0-2,7"`` -> ``[0, 1, 2, 7]``: text indices as people write them on a command line."""
    indices: list[int] = []
    try:
        for part in spec.split(","):
            low, _, high = part.partition("-")
            indices.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ParamsError(f"--indices {spec!r}: expected numbers and ranges such as 0-2,7") from None
    return indices


def check_setting(pair: str) -> str:
    """A ``-S key=value`` pair as `dvc exp run -S` takes it."""
    key, sep, _ = pair.partition("=")
    if not sep or not key.strip():
        raise ParamsError(f"-S {pair!r}: expected key=value, e.g. -S gap.steps=10")
    return pair


def experiment_name(corpus: str, index: int, model: str | None, extra: Sequence[str] = ()) -> str:
    """``gap-<corpus>-<index>[-<model>][-<hash of the other -S pairs>]``: equal names mean equal grid params,
    so a point already on the remote under its name is a point already run."""
    parts = ["gap", corpus, str(index), *([model] if model else [])]
    if extra:
        parts.append(hashlib.sha1("\n".join(sorted(extra)).encode()).hexdigest()[:8])
    return "-".join(parts).replace("/", "_").replace(".", "_")


@dataclass(frozen=True)
class GridPoint:
    """One experiment of the grid: its name and every ``-S`` pair it runs with."""

    name: str
    model: str | None
    settings: tuple[str, ...]

    @property
    def shared_settings(self) -> tuple[str, ...]:
        """The pairs the shared stages see (all but the text's corpus and index)."""
        return tuple(s for s in self.settings if not s.startswith(("gap.corpus=", "gap.index=")))


def grid_points(corpora: Sequence[str], indices: Sequence[int], models: Sequence[str | None] = (None,),
                extra: Sequence[str] = ()) -> list[GridPoint]:
    extra = [check_setting(pair) for pair in extra]
    points = []
    for model, corpus, index in itertools.product(models, corpora, indices):
        settings = [f"gap.corpus={corpus}", f"gap.index={index}", *([f"model.name={model}"] if model else []), *extra]
        points.append(GridPoint(experiment_name(corpus, index, model, extra), model, tuple(settings)))
    return points


def queue_commands(corpora: Sequence[str], indices: Sequence[int], models: Sequence[str | None] = (None,),
                   extra: Sequence[str] = ()) -> list[list[str]]:
    """One `dvc exp run --queue` command per point of the grid; ``extra`` adds ``-S`` pairs."""
    return [["dvc", "exp", "run", "--queue", "--name", point.name,
             *itertools.chain.from_iterable(("-S", pair) for pair in point.settings)]
            for point in grid_points(corpora, indices, models, extra)]
