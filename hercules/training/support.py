"""Pieces of the training loop kept apart from it: run state, the Accelerator, diagnostics, signals."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from hercules.training.config import TrackingSettings, TrainingSettings
from hercules.training.optim import group_parameters


class TrainingDiverged(RuntimeError):
    """Raised when more steps than ``training.max_skipped_steps`` had a non-finite loss or gradient."""


@dataclass
class TrainState:
    """Counters that a checkpoint restores (``step`` is also the position in the data stream)."""

    step: int = 0
    skipped: int = 0
    tokens: int = 0
    best_val_loss: float | None = None
    val_loss: float | None = None
    val_step: int | None = None  # the step val_loss was measured at
    schedule: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns: steps done, steps skipped, last loss, best validation loss."""

    steps: int
    skipped: int
    train_loss: float | None
    best_val_loss: float | None
    last_checkpoint: Path | None
    run_dir: Path


def make_accelerator(settings: TrainingSettings, tracking: TrackingSettings, run_dir: Path) -> Accelerator:
    """An Accelerator for this run: bf16 on GPU when ``precision: auto``, fp32 on CPU."""
    precision = settings.precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return Accelerator(
        mixed_precision="no" if precision == "fp32" else precision,
        cpu=not torch.cuda.is_available(),
        log_with=list(tracking.report_to) or None,
        project_dir=str(run_dir),
    )


def default_diagnostics(model: torch.nn.Module, settings: TrainingSettings) -> dict[str, float]:
    """L2 norm of the trainable parameters of each group (memory/injection vs LoRA)."""
    out = {}
    for key, named in group_parameters(model, settings).items():
        out[f"diag/param_norm/{key}"] = float(
            torch.sqrt(sum(p.detach().float().pow(2).sum() for _, p in named))
        )
    return out


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (a scheduler's preemption, ``kill``) like Ctrl-C, so the loop saves a checkpoint first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
