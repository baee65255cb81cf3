"""A run folder held by another process, for the tests of what a second run or evaluation does then."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _hold(folder: Path, ready, release) -> None:
    from hercules.training.run_folder import RunLock

    with RunLock(folder):
        ready.set()
        release.wait(30)


@contextmanager
def held_by_another_process(folder: Path) -> Iterator[int]:
    """Lock ``folder`` from a forked process for the duration of the block; yields that process's pid."""
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(folder, ready, release))
    holder.start()
    try:
        assert ready.wait(30), "the holder never took the lock"
        yield holder.pid
    finally:
        release.set()
        holder.join(30)
