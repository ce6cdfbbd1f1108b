"""Read unlabeled text corpora and draw the random texts that GAP post-trains on.

A corpus is a JSONL/JSON/CSV/TSV file, a folder of ``.txt`` files, or a Hugging Face hub dataset. Each text
keeps its original id, so a post-trained model can always be traced back to the exact text it saw.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from gap_pipeline.core.checks import refuse_sample_size
from gap_pipeline.core.errors import CorpusError, DataFormatError
from gap_pipeline.core.io import parse_jsonl, read_text_strict

FORMATS = (".jsonl", ".json", ".csv", ".tsv")


def _numbered_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """Each record of a table file with where it is (``file:line`` or ``file: record i``), checked as JSON/CSV."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return ((f"{path}:{n}", record) for n, record in parse_jsonl(path))
    text = read_text_strict(path)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataFormatError(f"{path}: a .json corpus must be a list of objects; save it as a list, or as "
                                  "JSONL (one object per line)")
        return ((f"{path}: record {i + 1}", record) for i, record in enumerate(data))
    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t" if suffix == ".tsv" else ",", dtype=str,
                            keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(f"{path}: not a readable {suffix[1:].upper()} table ({str(exc).strip()}); "
                              "fix the file (a header row, then one row per text)") from None
    # Line 1 is the header; quoted fields with line breaks would shift this, and are rare in corpora.
    return ((f"{path}:{i + 2}", record) for i, record in enumerate(frame.to_dict("records")))


def _checked(where: str, record: dict[str, Any], row: int, section: str, text_field: str,
             id_field: str | None) -> dict[str, Any]:
    """``record`` as a corpus text; ``section`` (``corpora.<name>``) is where its field names are set."""
    for field, key in ((text_field, "text_field"), (id_field, "id_field")):
        if field is not None and field not in record:
            raise DataFormatError(f"{where}: no field {field!r} (fields: {sorted(record)}); set {section}.{key} "
                                  "or fix the record")
    text = record[text_field]
    if not isinstance(text, str) or not text.strip():
        raise DataFormatError(f"{where}: field {text_field!r} is {'empty' if isinstance(text, str) else repr(text)}, "
                              "not a text; fix the record or remove it")
    return {"doc_id": record[id_field] if id_field else row, "source_row": row, "text": text}


def read_local_corpus(
    source: str | Path, text_field: str = "text", id_field: str | None = None, name: str = "corpus"
) -> list[dict]:
    """Every text of a local corpus, in file order, as ``{"doc_id", "source_row", "text"}``, each one checked.

    A record that cannot be read, lacks a field, or holds no text stops with where it is and the fix: a corpus
    enters the pipeline whole and correct, or not at all.
    """
    path = Path(source)
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise CorpusError(f"corpus folder {path} holds no .txt files; fix corpora.{name}.source")
        # A folder's texts are its files; the id is the path inside the folder.
        docs = [{"doc_id": str(f.relative_to(path)), "source_row": i, "text": read_text_strict(f)}
                for i, f in enumerate(files)]
        empty = next((d["doc_id"] for d in docs if not d["text"].strip()), None)
        if empty is not None:
            raise DataFormatError(f"{path / empty}: empty; remove the file or give it a text")
        return docs
    if not path.exists():
        raise CorpusError(f"corpus source {path} does not exist; fix corpora.{name}.source in params.yaml")
    if path.suffix.lower() not in FORMATS:
        raise CorpusError(f"corpus {path}: unknown format {path.suffix!r}; use one of {list(FORMATS)} or a folder "
                          "of .txt files")
    docs = [_checked(where, record, row, f"corpora.{name}", text_field, id_field)
            for row, (where, record) in enumerate(_numbered_records(path))]
    if not docs:
        raise DataFormatError(f"{path}: holds no texts; point corpora.{name}.source at a file with data")
    return docs


def read_hub_corpus(
    dataset: str, split: str, name: str | None = None, revision: str | None = None,
    text_field: str = "text", id_field: str | None = None, corpus: str = "corpus",
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
    frame = data.to_pandas()
    return [_checked(f"hub corpus {dataset}:{split}, row {row}", record, row, f"hub_corpora.{corpus}", text_field,
                     id_field) for row, record in enumerate(frame.to_dict("records"))]


def sample_corpus(docs: list[dict], n: int, seed: int | None, name: str = "corpus") -> list[dict]:
    """Draw ``n`` distinct texts without replacement; the same seed always gives the same texts in order.

    ``seed`` None takes the first ``n`` texts in file order: the paper's own choice for its Pile samples, so
    text ``i`` is row ``i`` of the file and a run lines up with the paper's run on the same index.
    """
    refuse_sample_size(name, n, len(docs))
    rows = list(range(n)) if seed is None else random.Random(seed).sample(range(len(docs)), n)
    return [docs[row] for row in rows]
