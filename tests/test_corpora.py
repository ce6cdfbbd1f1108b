import json

import pytest

from gap_pipeline.core.errors import DataFormatError
from gap_pipeline.core.params import parse_params
from gap_pipeline.corpora import CorpusError, read_local_corpus, sample_corpus


@pytest.fixture
def docs():
    return [{"doc_id": 1000 + i, "source_row": i, "text": f"text {i}"} for i in range(50)]


def test_sampling_is_deterministic_for_a_seed(docs):
    assert sample_corpus(docs, 10, seed=3) == sample_corpus(docs, 10, seed=3)


def test_sampling_differs_across_seeds(docs):
    assert sample_corpus(docs, 10, seed=3) != sample_corpus(docs, 10, seed=4)


def test_sampling_draws_distinct_texts_and_keeps_their_ids(docs):
    sample = sample_corpus(docs, 50, seed=0)
    assert sorted(d["doc_id"] for d in sample) == [d["doc_id"] for d in docs]


def test_a_null_seed_takes_the_first_texts_in_file_order_as_the_paper_did(docs, raw_params):
    assert [d["source_row"] for d in sample_corpus(docs, 5, seed=None)] == [0, 1, 2, 3, 4]
    raw_params["corpora"]["github"]["seed"] = None
    assert parse_params(raw_params).corpora["github"].seed is None


def test_sampling_more_than_the_corpus_names_the_key(docs):
    with pytest.raises(CorpusError, match=r"corpora\.github\.n = 51 .* only 50"):
        sample_corpus(docs, 51, seed=0, name="github")


def test_reads_jsonl_with_original_ids(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"doc_id": 7 + i, "text": f"t{i}"}) + "\n" for i in range(3)))
    assert read_local_corpus(path, "text", "doc_id") == [
        {"doc_id": 7 + i, "source_row": i, "text": f"t{i}"} for i in range(3)
    ]


def test_reads_csv_and_numbers_rows_without_id_field(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("body\nhello\n\"a, b\"\n")
    assert [(d["doc_id"], d["text"]) for d in read_local_corpus(path, "body", None)] == [(0, "hello"), (1, "a, b")]


def test_reads_a_folder_of_text_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub" / "b.txt").write_text("beta")
    docs = read_local_corpus(tmp_path)
    assert [(d["doc_id"], d["text"]) for d in docs] == [("a.txt", "alpha"), ("sub/b.txt", "beta")]


def test_missing_text_field_lists_the_fields(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"content": "x"}) + "\n")
    with pytest.raises(DataFormatError, match=r"c.jsonl:1: no field 'text' \(fields: \['content'\]\); set corpora.c"):
        read_local_corpus(path, "text", None, name="c")


def test_a_json_list_and_a_tsv_table_read_like_jsonl(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps([{"id": "a", "text": "one"}, {"id": "b", "text": "two"}]))
    (tmp_path / "c.tsv").write_text("id\ttext\na\tone\nb\ttwo\n")
    expected = [{"doc_id": "a", "source_row": 0, "text": "one"}, {"doc_id": "b", "source_row": 1, "text": "two"}]
    assert read_local_corpus(tmp_path / "c.json", "text", "id") == expected
    assert read_local_corpus(tmp_path / "c.tsv", "text", "id") == expected


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("c.json", '[{"text": "one"}, {"text": ', r"c.json:1: not valid JSON"),
    ("c.json", '{"text": "one"}', r"must be a list of objects"),
    ("c.csv", 'text\n"unclosed\n', r"c.csv: not a readable CSV table"),
    ("c.csv", "text\nfine\n\"\"\n", r"c.csv:3: field 'text' is empty"),
    ("c.parquet", "", r"unknown format '.parquet'"),
])
def test_a_malformed_table_names_the_file_and_the_place(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content)
    with pytest.raises((DataFormatError, CorpusError), match=expected):
        read_local_corpus(tmp_path / name, "text", None)


def test_default_corpora_are_the_papers_three(raw_params):
    params = parse_params(raw_params)
    assert set(params.corpora) == {"github", "pile_cc", "tdec"}
    for name, corpus in params.corpora.items():
        docs = read_local_corpus(corpus.source, corpus.text_field, corpus.id_field)
        assert len(docs) >= corpus.n, name
        assert all(isinstance(d["text"], str) for d in docs)
