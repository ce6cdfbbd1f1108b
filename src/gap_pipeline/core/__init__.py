"""What every layer shares: params, errors, file output, runtime, the task registry and the stage runner.

Nothing here imports lm-eval, and only ``runtime`` imports torch, so checking params costs a fraction of a second.
"""
