"""What every stage script shares: turning the pipeline's own errors into one clear line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from gap_pipeline.errors import PipelineInputError


def run_stage(main: Callable[[], None]) -> None:
    try:
        main()
    # The user's input is wrong: a traceback would bury the one line that says what to fix.
    except PipelineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
