"""What every stage script shares: turning the pipeline's own errors into one clear line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from gap_pipeline.ascent import DegenerateTextError
from gap_pipeline.corpora import CorpusError
from gap_pipeline.models import ModelNotFoundError
from gap_pipeline.params import ParamsError

# Errors that mean "the user's input is wrong": a traceback would bury the one line that says what to fix.
USER_ERRORS = (ParamsError, CorpusError, ModelNotFoundError, DegenerateTextError)


def run_stage(main: Callable[[], None]) -> None:
    try:
        main()
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
