"""What a run folder guarantees before anything is trained into it: one holder, no mixing, writable.

* :class:`RunLock` holds ``<run>/run.lock`` with an exclusive ``flock`` for as long as the run lives. The file
  names the holder (host, process id, start time, command), so a second run into the same folder stops at once
  with an error that says who holds it. The operating system drops the lock when the holder dies, even by
  SIGKILL, so a killed run never leaves a stale lock behind. Taking the lock twice in one process is allowed
  (the recipe runner and the trainer both take it).
* :func:`refuse_previous_run` refuses a fresh run into a folder that already holds one (checkpoints, metrics,
  a saved model or a summary): rotation would otherwise delete the new run's checkpoints in favour of the old
  ones and ``best`` would name the old run's. Continue the old run with ``--resume``, or pick another name.
* :func:`check_writable` tries a write where checkpoints go, so a read-only folder is found before step 1, not at
  the first save.

Examples:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> with RunLock(run) as lock:
    ...     lock.holder()["pid"] == os.getpid()
    True
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the folder is still checked, but not locked
    fcntl = None

logger = logging.getLogger(__name__)

LOCK_NAME = "run.lock"
_HELD: dict[str, list[Any]] = {}  # resolved lock path -> [open file, how many holders in this process]


class RunFolderLocked(RuntimeError):
    """Another live process holds the run folder's lock."""


class RunFolderInUse(FileExistsError):
    """A fresh run was started into a folder that holds an earlier run."""


class RunLock:
    """An exclusive, re-entrant (within one process) lock on a run folder; a context manager."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._key = str(self.path.resolve()) if self.path.parent.exists() else str(self.path.absolute())
        self._held = False

    def acquire(self) -> RunLock:
        if self._held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = str(self.path.resolve())
        if self._key in _HELD:
            _HELD[self._key][1] += 1
        else:
            handle = open(self.path, "a+")  # noqa: SIM115 - kept open for as long as the lock is held
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    holder = _describe(_read_holder(self.path))
                    handle.close()
                    raise RunFolderLocked(
                        f"run folder {self.folder} is in use by {holder} (lock file {self.path}); wait for that "
                        f"run to end or stop it, or give this run another name"
                    ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(_this_process()))
            handle.flush()
            _HELD[self._key] = [handle, 1]
        self._held = True
        return self

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        entry = _HELD.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[self._key]
            entry[0].close()  # closing the file drops the flock

    def holder(self) -> dict[str, Any] | None:
        """Who holds (or last held) the lock, as written in the lock file."""
        return _read_holder(self.path)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _this_process() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv)[:300],
    }


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} ({holder.get('command')})"


def previous_run(run_dir: str | Path) -> list[str]:
    """What in ``run_dir`` shows an earlier training run (empty when there is none)."""
    run = Path(run_dir)
    found = []
    ckpt = run / "checkpoints"
    if ckpt.is_dir() and any(p.name.startswith("step-") or p.name == "index.json" for p in ckpt.iterdir()):
        found.append("checkpoints/")
    metrics = run / "metrics.jsonl"
    if metrics.is_file() and metrics.stat().st_size > 0:
        found.append("metrics.jsonl")
    found += [name for name in ("model", "summary.json") if (run / name).exists()]
    return found


def refuse_previous_run(run_dir: str | Path) -> None:
    """Raise :class:`RunFolderInUse` when a fresh run would train into a folder holding an earlier one."""
    found = previous_run(run_dir)
    if found:
        raise RunFolderInUse(
            f"run folder {run_dir} already holds a run ({', '.join(found)}); continue it with --resume "
            f"(training.resume: latest), give this run another name, or remove the folder"
        )


def check_writable(folder: str | Path, tag: str = "0") -> None:
    """Create ``folder`` and write and remove a probe file in it; a clear error when that is not possible."""
    folder = Path(folder)
    probe = folder / f".write-probe-{tag}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink(missing_ok=True)
    except OSError as err:
        raise PermissionError(
            f"cannot write to {folder} ({err.strerror or err}); checkpoints go there: make it writable or set "
            f"output_dir to a writable folder"
        ) from err


def open_run_folder(run_dir: str | Path, checkpoints: Any, *, fresh: bool, is_main: bool, rank: int) -> RunLock | None:
    """What a training run does to its folder before step 1; returns the lock (main process) to release at the end.

    The main process takes the lock; a fresh run is refused when the folder holds an earlier run; every process
    checks that it can write checkpoints; the main process repairs what a crash left
    (:meth:`~hercules.training.checkpoint.CheckpointManager.recover`).
    """
    lock = RunLock(run_dir).acquire() if is_main else None
    try:
        if fresh:
            refuse_previous_run(run_dir)
        check_writable(checkpoints.root, tag=str(rank))
        if is_main:
            checkpoints.recover()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock
