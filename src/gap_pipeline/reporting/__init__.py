"""What users read: one run's summary, a sweep's report beside the paper, and a pull request's metric diff.

Reads metrics files only; imports nothing above ``core``.
"""
