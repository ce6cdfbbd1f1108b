"""DVC stage sample_corpus@<name>: draw `n` random texts (seeded) from one corpus into a JSONL file."""

import argparse
from pathlib import Path

from gap_pipeline.core.errors import ParamsError
from gap_pipeline.core.io import write_jsonl
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.corpora import read_hub_corpus, read_local_corpus, sample_corpus


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `corpora` (or, with --hub, `hub_corpora`)")
    parser.add_argument("--hub", action="store_true", help="the corpus is under `hub_corpora`")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    args = parser.parse_args()
    section = "hub_corpora" if args.hub else "corpora"
    if args.name not in getattr(params, section):
        raise ParamsError(f"--name {args.name!r}: no such corpus under `{section}` in params.yaml"
                          + ("" if args.hub else "; pass --hub for one under `hub_corpora`"))
    c = getattr(params, section)[args.name]
    if args.hub:
        docs = read_hub_corpus(c.dataset, c.split, c.name, c.revision, c.text_field, c.id_field)
    else:
        docs = read_local_corpus(c.source, c.text_field, c.id_field)
    sample = sample_corpus(docs, c.n, c.seed, args.name)
    write_jsonl(args.out, sample)
    print(f"sampled {len(sample)} of {len(docs)} texts from corpus {args.name!r} into {args.out}")


if __name__ == "__main__":
    run_stage(main)
