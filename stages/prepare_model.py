"""DVC stages prepare_model and prepare_reference@<name>: write a model as a safetensors directory plus
model_info.json; `model.name` (the model GAP post-trains) unless `--reference` names a reference model."""

import argparse
import tempfile
from pathlib import Path

from gap_pipeline.core.io import atomic_path
from gap_pipeline.core.params import TrackedParams
from gap_pipeline.core.stage import run_stage
from gap_pipeline.models import prepare_model


def main(params: TrackedParams) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--reference", help="an entry of reference.models instead of model.name")
    args = parser.parse_args()
    model = params.model
    # A reference model is scored only, never post-trained: no revision of its own, the same code trust.
    name, revision = (args.reference, None) if args.reference else (model.name, model.revision)
    with atomic_path(args.out, directory=True) as tmp, tempfile.TemporaryDirectory() as scratch:
        info = prepare_model(name, tmp, Path(scratch), revision, model.trust_remote_code)
    print(f"prepared {info['name']} ({info['architecture']}, {info['parameters']:,} parameters) in {args.out}")


if __name__ == "__main__":
    run_stage(main)
