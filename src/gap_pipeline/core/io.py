"""Atomic outputs: a stage killed at any moment must never leave a half-written file that DVC would cache.

Everything is written under a temporary sibling path and renamed into place only once complete; a rename
within one directory is atomic on POSIX filesystems.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gap_pipeline.core.errors import DataFormatError


@contextmanager
def atomic_path(target: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success replace ``target`` with it, on error remove it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-"
    # A SIGKILLed run cannot clean up after itself: its leftovers are cleared by the next run instead.
    for stale in target.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary, readable folder
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory and target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_table(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], delimiter: str = "\t"
) -> None:
    """Write rows as a table with a header (tab-separated unless told), the formats ``dvc plots`` reads."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), delimiter=delimiter, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_text_strict(path: str | os.PathLike) -> str:
    """A file's text, refusing bytes that are not UTF-8 with the line they are on."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"{path}:{line}: not valid UTF-8 (byte {exc.start}: {exc.reason}); save the file as "
                              "UTF-8") from None


def parse_jsonl(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """Every record of a JSONL file with its line number; a line that is not a JSON object stops with its number.

    For data entering the pipeline: the message says which line to fix, where ``json`` alone would only raise.
    """
    records = []
    # Lines end at "\n" only: str.splitlines would also cut at U+2028 and friends, which JSON strings may hold.
    for number, line in enumerate(read_text_strict(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}:{number}: not a JSON record ({exc.msg} at column {exc.colno}); "
                                  "fix or remove the line (one JSON object per line)") from None
        if not isinstance(record, dict):
            raise DataFormatError(f"{path}:{number}: a JSON {type(record).__name__}, not an object; "
                                  "each line must be one JSON object")
        records.append((number, record))
    if not records:
        raise DataFormatError(f"{path}: holds no records; point the params at a file with data")
    return records
