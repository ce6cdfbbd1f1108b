import pytest

from gap_pipeline.core.io import atomic_path, read_jsonl, write_jsonl, write_table


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_directory_output_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("x")
    with atomic_path(target, directory=True) as tmp:
        (tmp / "weights.bin").write_text("y")
    assert [p.name for p in target.iterdir()] == ["weights.bin"]
    assert list(tmp_path.iterdir()) == [target]


def test_jsonl_and_tsv_round_trip(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "ü"}]
    write_jsonl(tmp_path / "r.jsonl", rows)
    assert read_jsonl(tmp_path / "r.jsonl") == rows
    write_table(tmp_path / "r.tsv", rows, ["a", "b"])
    assert (tmp_path / "r.tsv").read_text(encoding="utf-8") == "a\tb\n1\tx\n2\tü\n"


def test_ctrl_c_mid_write_leaves_no_partial_directory(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt), atomic_path(target, directory=True) as tmp:
        (tmp / "half.safetensors").write_bytes(b"\0" * 10)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_run_are_cleared_by_the_next(tmp_path):
    # What SIGKILL leaves: a temporary sibling that no `except` got to remove.
    (tmp_path / ".model.tmp-dead").mkdir()
    (tmp_path / ".model.tmp-dead" / "half.safetensors").write_bytes(b"\0")
    (tmp_path / ".other.tmp-keep").write_text("another output's, not ours")
    with atomic_path(tmp_path / "model", directory=True) as tmp:
        (tmp / "weights.safetensors").write_bytes(b"\1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-keep", "model"]
