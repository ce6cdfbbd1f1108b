import pytest

from gap_pipeline.outputs import atomic_path, read_jsonl, write_jsonl, write_table


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
