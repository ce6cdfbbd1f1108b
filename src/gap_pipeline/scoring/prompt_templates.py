"""lm-eval's Jinja prompt templates compiled once per template instead of once per document and field.

lm-eval 0.4 renders ``doc_to_text``, ``doc_to_target`` and ``doc_to_choice`` through ``utils.apply_template``,
which compiles its template string anew on every call: on this 2-core machine about a second of every task's
evaluation at 320 examples, the same for every model class, and the largest part of the time a task takes
outside the model (measured with an LM that scores nothing; upstream: EleutherAI/lm-evaluation-harness#1286).
A compiled Jinja template renders any number of documents, so keeping the compiled one changes no prompt.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from lm_eval import utils as lm_eval_utils

_UNCACHED = lm_eval_utils.apply_template


@functools.lru_cache(maxsize=1024)  # a task has a handful of templates; the bound only guards odd configs
def compiled_template(template: str) -> jinja2.Template:
    """``template`` compiled in lm-eval's own Jinja environment (its filters, its undefined-variable rule)."""
    return lm_eval_utils.env.from_string(template)


def apply_template(template: str, doc: dict[str, Any]) -> str:
    """lm-eval's ``apply_template``, rendering a compiled template kept from an earlier call."""
    return compiled_template(template).render(**doc)


def cache_prompt_templates() -> None:
    """Make lm-eval render through :func:`apply_template`; calling it again changes nothing.

    lm-eval's tasks call ``utils.apply_template`` through the module at every use, so replacing the module's
    attribute reaches every call. Refuses an lm-eval whose function is neither its own nor ours.
    """
    current = lm_eval_utils.apply_template
    if current is not _UNCACHED and current is not apply_template:
        raise RuntimeError(
            f"lm_eval.utils.apply_template is {current!r}, not lm-eval's own: something else replaced it; "
            "remove that patch or drop gap_pipeline's cache_prompt_templates call"
        )
    lm_eval_utils.apply_template = apply_template
