"""Run tracking: metrics.jsonl, a rich progress bar (loss, tokens/s, ETA) and PNG plots.

``metrics.jsonl`` holds one JSON object per line, each with ``step`` and ``kind`` (``train``, ``val``,
``babilong``, ``skip``); :func:`hercules.training.plots.plot_run` turns it into ``loss_curve.png`` and
``memory_diagnostics.png``.

Examples:
    >>> import tempfile, pathlib
    >>> log = MetricsLog(pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl")
    >>> log.write({"step": 1, "kind": "train", "loss": 2.5})
    >>> log.read()[0]["loss"]
    2.5
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

logger = logging.getLogger(__name__)


class MetricsLog:
    """Append-only JSONL metrics file (written by the main process only)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path, self.enabled = Path(path), enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(_plain(record)) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """The records; a last line cut short by a kill mid-write is skipped with a warning."""
        if not self.path.exists():
            return []
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise ValueError(f"{self.path}, line {number}: not a JSON record") from None
                logger.warning("%s: skipping its last line, cut short by an interrupted write", self.path)
        return records

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (written by an interrupted run that is now resumed from ``step``)."""
        if self.enabled and self.path.exists():
            kept = [r for r in self.read() if r.get("step", 0) <= step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)  # JSON has no NaN/inf
        out[key] = value
    return out


def progress_bar(enabled: bool) -> Progress:
    """A rich progress bar whose task fields ``loss`` and ``tps`` show the last loss and tokens/s."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[tps]} tok/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
