"""Gradient Ascent Post-training (Yoon et al., ACL 2023) as a cached DVC pipeline.

The package is layered; each layer imports only the ones listed before it, and a DVC stage depends on the
folders and modules its imports load (tests/test_architecture.py checks both):

- ``core/``: params, errors, file output, runtime (device, dtype, seeds), the task registry, the stage runner.
- ``models.py``, ``corpora.py``, ``task_data.py``: resolving and loading models; reading, checking and sampling
  texts; checking and importing the tasks' data splits.
- ``scoring/``: lm-eval tasks and our lm-eval model class (batching, KV cache, vocabulary reduction).
- ``gap/``: the ascent, best-step selection and the post-training run.
- ``reporting/``: the run summary, the sweep report and the pull-request diff (reads only ``core``).
- ``sweep.py``: queues a grid of experiments and collects them (uses ``reporting``).
"""

__version__ = "0.1.0"
