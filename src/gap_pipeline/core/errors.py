"""Errors that mean "the user's input is wrong": each message names the bad value and what to do instead.

Stages turn these into one line on stderr and exit code 2 (``core.stage.run_stage``); anything else is a bug and
keeps its traceback. They live here, apart from the heavy modules that raise them, so every stage can catch
them without importing torch or lm-eval first.
"""

from __future__ import annotations


class PipelineInputError(Exception):
    """Base of every error a user fixes by changing params.yaml, a data file or the environment."""


class ParamsError(PipelineInputError, ValueError):
    """A params.yaml value that the pipeline cannot run with."""


class CorpusError(PipelineInputError, ValueError):
    """A corpus that cannot be read or sampled as asked."""


class ModelNotFoundError(PipelineInputError, FileNotFoundError):
    """No weights where the name points; the message lists every place tried."""


class DataFormatError(PipelineInputError, ValueError):
    """A data file that cannot be read as what it claims to be; the message names the file, the line and the fix."""


class DataNotFoundError(PipelineInputError, FileNotFoundError):
    """A benchmark split that is neither in the local mirror nor reachable on the hub."""


class DegenerateTextError(PipelineInputError, ValueError):
    """A text too short to have a next-token loss (fewer than 2 tokens)."""


class DivergenceError(PipelineInputError, FloatingPointError):
    """The untouched model's loss is already non-finite or above the ceiling: there is no step to keep."""
