"""DVC stage sample_corpus@<name>: draw `n` random texts (seeded) from one corpus into a JSONL file."""

import _checkout  # noqa: F401, I001  (first: the package below comes from this checkout)
import argparse
from pathlib import Path

from gap_pipeline.cli import run_stage
from gap_pipeline.corpora import read_hub_corpus, read_local_corpus, sample_corpus
from gap_pipeline.outputs import write_jsonl
from gap_pipeline.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `corpora` or `hub_corpora` in params.yaml")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    args = parser.parse_args()
    params = load_params()
    if args.name in params.corpora:
        c = params.corpora[args.name]
        docs = read_local_corpus(c.source, c.text_field, c.id_field)
    else:
        c = params.hub_corpora[args.name]
        docs = read_hub_corpus(c.dataset, c.split, c.name, c.revision, c.text_field, c.id_field)
    sample = sample_corpus(docs, c.n, c.seed, args.name)
    write_jsonl(args.out, sample)
    print(f"sampled {len(sample)} of {len(docs)} texts from corpus {args.name!r} into {args.out}")


if __name__ == "__main__":
    run_stage(main)
