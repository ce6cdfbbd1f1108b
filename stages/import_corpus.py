"""DVC stage import_corpus@<name>: check every text of a local corpus (`corpora.<name>.source`) and copy it in.

The corpus enters the DVC graph here, whole and in one format (`doc_id`, `source_row`, `text` per line), so the
sampling stage reads a file inside the repository: queued experiments and other machines find it in the DVC cache.
"""

import argparse
from pathlib import Path

from gap_pipeline.core.io import write_jsonl
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.corpora import read_local_corpus


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `corpora` in params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    args = parser.parse_args()
    corpus = params.corpora[args.name]
    docs = read_local_corpus(corpus.source, corpus.text_field, corpus.id_field, args.name)
    write_jsonl(args.out, docs)
    print(f"imported {len(docs)} texts of corpus {args.name!r} from {corpus.source} into {args.out}")


if __name__ == "__main__":
    run_stage(main)
