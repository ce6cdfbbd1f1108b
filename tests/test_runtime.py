"""Process settings that change speed, not results."""

import platform

from gap_pipeline.core.runtime import keep_freed_memory


def test_freed_memory_is_kept_where_glibc_runs():
    # glibc's mallopt answers 1 for each accepted setting; elsewhere there is nothing to set.
    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
