"""DVC stage prepare_model: write `model.name` as a safetensors model directory plus model_info.json."""

import argparse
import tempfile
from pathlib import Path

from gap_pipeline.cli import run_stage
from gap_pipeline.models import prepare_model
from gap_pipeline.outputs import atomic_path
from gap_pipeline.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    args = parser.parse_args()
    model = load_params().model
    with atomic_path(args.out, directory=True) as tmp, tempfile.TemporaryDirectory() as scratch:
        info = prepare_model(model.name, tmp, Path(scratch), model.revision, model.trust_remote_code)
    print(f"prepared {info['name']} ({info['architecture']}, {info['parameters']:,} parameters) in {args.out}")


if __name__ == "__main__":
    run_stage(main)
