"""Peak resident memory of a piece of Python code, measured in fresh processes."""

from __future__ import annotations

import subprocess
import sys

WATCH = (
    "import resource, subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1]], "
    "check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_mb(code: str) -> float:
    """Peak RSS (MB) of the largest process among those running `code`: a fresh watcher process runs
    it in a child and reads getrusage(RUSAGE_CHILDREN), which covers the child and any workers it
    waited for."""
    out = subprocess.run(
        [sys.executable, "-c", WATCH, code], check=True, capture_output=True, text=True
    )
    return int(out.stdout.split()[-1]) / 1024
