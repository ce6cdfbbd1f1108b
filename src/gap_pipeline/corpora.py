"""Read unlabeled text corpora and draw the random texts that GAP post-trains on.

A corpus is a JSONL/JSON/CSV/TSV file, a folder of ``.txt`` files, or a Hugging Face hub dataset. Each text
keeps its original id, so a post-trained model can always be traced back to the exact text it saw.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd

from gap_pipeline.core.errors import CorpusError

TABLE_READERS = {
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    ".json": lambda p: pd.read_json(p, dtype=False),
    ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
    ".tsv": lambda p: pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False),
}


def _records(frame: pd.DataFrame, source: str, text_field: str, id_field: str | None) -> list[dict[str, Any]]:
    if text_field not in frame.columns:
        raise CorpusError(
            f"corpus {source}: no field {text_field!r} (fields: {list(frame.columns)}); set text_field"
        )
    if id_field is not None and id_field not in frame.columns:
        raise CorpusError(f"corpus {source}: no field {id_field!r} (fields: {list(frame.columns)}); set id_field")
    ids = frame[id_field].tolist() if id_field else list(range(len(frame)))
    return [
        {"doc_id": doc_id, "source_row": row, "text": "" if text is None else str(text)}
        for row, (doc_id, text) in enumerate(zip(ids, frame[text_field].tolist(), strict=True))
    ]


def read_local_corpus(source: str | Path, text_field: str = "text", id_field: str | None = None) -> list[dict]:
    """Every text of a local corpus, in file order, as ``{"doc_id", "source_row", "text"}``."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise CorpusError(f"corpus folder {path} holds no .txt files")
        # A folder's texts are its files; the id is the path inside the folder.
        return [
            {"doc_id": str(f.relative_to(path)), "source_row": i, "text": f.read_text(encoding="utf-8")}
            for i, f in enumerate(files)
        ]
    if not path.exists():
        raise CorpusError(f"corpus source {path} does not exist; fix its `source` in params.yaml")
    reader = TABLE_READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"corpus {path}: unknown format {path.suffix!r}; use one of {sorted(TABLE_READERS)}")
    return _records(reader(path), str(path), text_field, id_field)


def read_hub_corpus(
    dataset: str, split: str, name: str | None = None, revision: str | None = None,
    text_field: str = "text", id_field: str | None = None,
) -> list[dict]:
    """Every text of a hub dataset split (online users); ``revision`` pins it, since DVC cannot hash it."""
    import datasets

    try:
        data = datasets.load_dataset(dataset, name, split=split, revision=revision)
    except (ConnectionError, FileNotFoundError) as exc:
        cache = datasets.config.HF_DATASETS_CACHE
        raise CorpusError(
            f"hub corpus {dataset!r} (split {split!r}) could not be read: tried the hub and the datasets cache "
            f"under {cache} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); when offline, save the "
            "texts as a JSONL/CSV file or a folder of .txt files and list it under `corpora` with `source:`"
        ) from exc
    return _records(data.to_pandas(), f"{dataset}:{split}", text_field, id_field)


def sample_corpus(docs: list[dict], n: int, seed: int | None, name: str = "corpus") -> list[dict]:
    """Draw ``n`` distinct texts without replacement; the same seed always gives the same texts in order.

    ``seed`` None takes the first ``n`` texts in file order: the paper's own choice for its Pile samples, so
    text ``i`` is row ``i`` of the file and a run lines up with the paper's run on the same index.
    """
    if n > len(docs):
        raise CorpusError(f"corpora.{name}.n = {n} but the corpus holds only {len(docs)} texts; lower n")
    rows = list(range(n)) if seed is None else random.Random(seed).sample(range(len(docs)), n)
    return [docs[row] for row in rows]
