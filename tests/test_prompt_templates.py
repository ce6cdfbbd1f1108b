"""Compiled prompt templates kept between documents: every prompt, target and choice list as lm-eval renders it."""

from __future__ import annotations

import pytest
from lm_eval import utils as lm_eval_utils

from gap_pipeline.core.tasks import ALL_TASKS
from gap_pipeline.scoring import prompt_templates
from gap_pipeline.scoring.task_config import TaskRun, task_manager_for, task_spec
from tests.conftest import SHARED

DOCS = 40


@pytest.fixture
def lm_evals_own(monkeypatch):
    """lm-eval's uncached apply_template in place for the test, and an empty cache; both restored after."""
    monkeypatch.setattr(lm_eval_utils, "apply_template", prompt_templates._UNCACHED)
    prompt_templates.compiled_template.cache_clear()
    yield
    prompt_templates.compiled_template.cache_clear()


def rendered(task) -> list[tuple]:
    docs = list(task.eval_docs)[:DOCS]
    return [(task.doc_to_text(d), task.doc_to_target(d), task.doc_to_choice(d) if task.config.doc_to_choice else None)
            for d in docs]


@pytest.mark.parametrize("task", ALL_TASKS)
def test_cached_templates_render_what_lm_eval_renders(task, lm_evals_own):
    run = TaskRun(task, "validation", DOCS, SHARED / "benchmarks")
    loaded = task_manager_for(run).load([task_spec(run)])["tasks"]
    (ours,) = (t for name, t in loaded.items() if name.endswith(task))
    expected = rendered(ours)
    prompt_templates.cache_prompt_templates()
    assert lm_eval_utils.apply_template is prompt_templates.apply_template
    assert rendered(ours) == expected
    config = ours.config
    templates = {f for f in (config.doc_to_text, config.doc_to_target, config.doc_to_choice)
                 if isinstance(f, str) and "{{" in f}  # the rest are a document's field, a list or a function
    cache = prompt_templates.compiled_template.cache_info()
    assert cache.currsize == len(templates)  # each compiled once ...
    assert cache.hits >= len(templates) * (DOCS - 1)  # ... and reused for every later document


def test_installing_twice_keeps_ours_and_a_foreign_patch_is_refused(lm_evals_own, monkeypatch):
    prompt_templates.cache_prompt_templates()
    prompt_templates.cache_prompt_templates()
    assert lm_eval_utils.apply_template is prompt_templates.apply_template
    monkeypatch.setattr(lm_eval_utils, "apply_template", lambda template, doc: "")
    with pytest.raises(RuntimeError, match="not lm-eval's own"):
        prompt_templates.cache_prompt_templates()
