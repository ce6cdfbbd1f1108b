"""Zero-shot scoring through lm-eval: the tasks as the pipeline scores them, and our lm-eval model class."""
