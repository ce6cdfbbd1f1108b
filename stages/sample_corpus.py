"""DVC stage sample_corpus@<name>: draw `n` random texts (seeded) from one imported corpus into a JSONL file.

With `--hub` the corpus is a `hub_corpora` entry, read from the hub (DVC cannot hash it: pin its `revision`).
"""

import argparse
from pathlib import Path

from gap_pipeline.core.io import read_jsonl, write_jsonl
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.corpora import read_hub_corpus, sample_corpus


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `corpora` (or, with --hub, `hub_corpora`)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", type=Path, help="the corpus as import_corpus wrote it")
    source.add_argument("--hub", action="store_true", help="the corpus is a `hub_corpora` entry")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    args = parser.parse_args()
    c = (params.hub_corpora if args.hub else params.corpora)[args.name]
    if args.hub:
        docs = read_hub_corpus(c.dataset, c.split, c.name, c.revision, c.text_field, c.id_field, args.name)
    else:
        docs = read_jsonl(args.corpus)
    sample = sample_corpus(docs, c.n, c.seed, args.name)
    write_jsonl(args.out, sample)
    print(f"sampled {len(sample)} of {len(docs)} texts from corpus {args.name!r} into {args.out}")


if __name__ == "__main__":
    run_stage(main)
