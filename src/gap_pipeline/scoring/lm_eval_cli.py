"""``gap-lm-eval``: lm-eval's own command line, with our model class and the pipeline's tasks added.

Everything lm-eval's CLI takes works unchanged (``--model hf``, ``--output_path``, ``--log_samples``, ...).
What this adds: ``--model gap-fast`` (FastLM), and the 12 task names scored as the pipeline scores them: the
eight multiple-choice tasks on the validation split of the benchmark folder (stock prompts and metrics), the four
dialogue tasks, and ``<dialogue task>_reply_loss``. The benchmark folder is ``--metadata benchmarks=DIR``, else
$GAP_BENCHMARKS, else the project's ``data/benchmarks`` (``lm_eval_tasks/utils.py``). lm-eval's stock versions of
the eight stay reachable through plain ``lm-eval``.
"""

from __future__ import annotations

import sys

from gap_pipeline.scoring.task_config import TASKS_DIR, cli_task_name

TASK_FLAGS = ("--tasks", "-t")


def _our_task(name: str) -> str:
    """Our config's path for one of our names (so it resolves whatever ``--include_path`` the user adds)."""
    path = TASKS_DIR / f"{cli_task_name(name)}.yaml"
    return str(path) if not name.startswith("_") and path.is_file() else name


def lm_eval_arguments(argv: list[str]) -> list[str]:
    """``argv`` for lm-eval's CLI: our task names replaced by our configs, our folder on the include path."""
    out: list[str] = []
    in_tasks = False
    for arg in argv:
        if in_tasks and not arg.startswith("-"):
            arg = ",".join(_our_task(name) for name in arg.split(",") if name)
        elif arg.startswith("--tasks="):
            arg = "--tasks=" + ",".join(_our_task(name) for name in arg.removeprefix("--tasks=").split(",") if name)
        in_tasks = arg in TASK_FLAGS or (in_tasks and not arg.startswith("-"))
        out.append(arg)
    selects_tasks = argv[:1] == ["ls"] or any(a in TASK_FLAGS or a.startswith("--tasks=") for a in argv)
    if selects_tasks and not any(a == "--include_path" or a.startswith("--include_path=") for a in argv):
        out += ["--include_path", str(TASKS_DIR)]  # `gap-lm-eval ls tasks` lists ours too
    return out


def main(argv: list[str] | None = None) -> None:
    """The console script: register ``gap-fast``, then hand over to lm-eval's own entry point."""
    from lm_eval.__main__ import cli_evaluate

    import gap_pipeline.scoring.fast_lm  # noqa: F401  (registers the gap-fast model class)

    sys.argv = [sys.argv[0], *lm_eval_arguments(sys.argv[1:] if argv is None else argv)]
    cli_evaluate()


if __name__ == "__main__":
    main()
