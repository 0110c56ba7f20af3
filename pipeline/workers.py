"""Worker processes for the offline pipeline: results in job order, whatever the number of workers,
so outputs are the same with one worker or many."""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm

WORKERS = 2  # processes for decoding, shard writing and synthesis


def ordered_map(
    fn: Callable, jobs: list, workers: int, desc: str, progress: bool, start: str = "fork"
) -> Iterable:
    """Map `fn` over jobs in order, in-process for one worker, else in a process pool started by
    `start` (multiprocessing's fork or spawn); with a progress bar."""
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress)
    if workers <= 1:
        results = map(fn, jobs)
    else:
        pool = ProcessPoolExecutor(
            workers, mp_context=mp.get_context(start), initializer=_ignore_sigint
        )
        results = pool.map(fn, jobs)
    try:
        for result in results:
            yield result
            bar.update()
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown(cancel_futures=True)


def _ignore_sigint() -> None:
    """Ctrl-C reaches every process of the terminal's group: the main process stops the work and
    says so once; the workers, stopped by it, print no tracebacks of their own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
