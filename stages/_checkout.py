"""Put this checkout's `src/` first on `sys.path`, so a stage runs the code that DVC hashed as its deps.

The package is installed editable from the main workspace, but `dvc exp run --queue` runs each experiment in a
copy of the repo under `.dvc/tmp/exps/`. Without this a queued experiment would import the workspace's package as
it stands when the stage starts (edits made after queuing included), while DVC records the copy's files as the
stage's dependencies. Every stage script imports this module before the package.
"""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
