"""The runner every stage script shares: load params, run, and turn the user's errors into one line.

With ``GAP_STAGE_TRACE`` set to a file name, it also writes the params keys the stage read and the project
modules it loaded; the tests compare both with the stage's ``params`` and ``deps`` in ``dvc.yaml``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from gap_pipeline.core.errors import PipelineInputError
from gap_pipeline.core.params import TrackedParams, load_params

TRACE_ENV = "GAP_STAGE_TRACE"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def loaded_project_modules() -> list[str]:
    """Files of this package that the running interpreter has imported, relative to the package's parent."""
    files = {Path(m.__file__).resolve() for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
    return sorted(str(f.relative_to(PACKAGE_ROOT.parent)) for f in files if f.is_relative_to(PACKAGE_ROOT))


def _write_trace(path: str, params: TrackedParams) -> None:
    trace = {"params": sorted(params.keys_read()), "modules": loaded_project_modules()}
    Path(path).write_text(json.dumps(trace, indent=1) + "\n", encoding="utf-8")


def run_stage(main: Callable[[TrackedParams], None]) -> None:
    """Call ``main`` with the validated params; a bad input exits with code 2 and one ``error:`` line."""
    try:
        params = load_params()
        main(params)
    # The user's input is wrong: a traceback would bury the one line that says what to fix.
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if os.environ.get(TRACE_ENV):
        _write_trace(os.environ[TRACE_ENV], params)
