"""AdamW with per-group learning rates, and warm-up + constant/cosine/linear schedules.

Parameter groups are formed by name: trainable parameters whose name contains a LoRA pattern (``lora_``) get
``lora_lr``; all other trainable parameters (memory, injection projections, gates, persistent tokens, or anything
fully fine-tuned) get ``lr``. Biases, norm weights and other 1-D parameters get no weight decay.

Examples:
    >>> import torch
    >>> from hercules.training.config import TrainingSettings
    >>> model = torch.nn.Linear(4, 4)
    >>> opt = build_optimizer(model, TrainingSettings(max_steps=1, lr=1e-2, weight_decay=0.1))
    >>> [g["name"] for g in opt.param_groups]
    ['main', 'main_no_decay']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch

from hercules.training.config import ScheduleSettings, TrainingSettings

logger = logging.getLogger(__name__)


def group_parameters(
    model: torch.nn.Module, settings: TrainingSettings
) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """Trainable ``(name, parameter)`` pairs keyed by group: main/lora, each with a ``_no_decay`` twin."""
    groups: dict[str, list[tuple[str, torch.nn.Parameter]]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        base = "lora" if any(p in name for p in settings.lora_patterns) else "main"
        key = base if param.ndim >= 2 else f"{base}_no_decay"
        groups.setdefault(key, []).append((name, param))
    if not groups:
        raise ValueError(
            "the model has no trainable parameters: enable memory, LoRA or full fine-tuning in the recipe, "
            "or drop the training section to evaluate only"
        )
    return groups


def build_optimizer(model: torch.nn.Module, settings: TrainingSettings) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, one param group per (main|lora) x (decay|no decay)."""
    lora_lr = settings.lora_lr or settings.lr
    param_groups = []
    for key, named in sorted(group_parameters(model, settings).items()):
        param_groups.append(
            {
                "name": key,
                "params": [p for _, p in named],
                "lr": lora_lr if key.startswith("lora") else settings.lr,
                "weight_decay": 0.0 if key.endswith("_no_decay") else settings.weight_decay,
            }
        )
        logger.info(
            "param group %s: %d tensors, %d values", key, len(named), sum(p.numel() for _, p in named)
        )
    return torch.optim.AdamW(param_groups, betas=settings.betas, eps=settings.eps)


def lr_multiplier(schedule: ScheduleSettings, total_steps: int) -> Callable[[int], float]:
    """Factor applied to each group's peak lr at optimizer step ``step`` (0-based)."""

    def factor(step: int) -> float:
        if schedule.warmup_steps and step < schedule.warmup_steps:
            return (step + 1) / schedule.warmup_steps
        if schedule.kind == "constant":
            return 1.0
        span = max(1, total_steps - schedule.warmup_steps)
        progress = min(1.0, (step - schedule.warmup_steps) / span)
        shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule.kind == "cosine" else 1.0 - progress
        return schedule.min_lr_ratio + (1.0 - schedule.min_lr_ratio) * shape

    return factor


class Schedule:
    """A learning-rate schedule whose whole state is one integer (so it saves as JSON).

    ``step()`` advances by one optimizer step and writes ``peak_lr * factor(step)`` into every group.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, schedule: ScheduleSettings, total_steps: int
    ) -> None:
        self.optimizer = optimizer
        self.factor = lr_multiplier(schedule, total_steps)
        self.peak_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        for group, peak in zip(self.optimizer.param_groups, self.peak_lrs, strict=True):
            group["lr"] = peak * self.factor(self.last_step)

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_step": self.last_step, "peak_lrs": self.peak_lrs}

    def load_state_dict(self, state: dict) -> None:
        self.last_step = int(state["last_step"])
        self.peak_lrs = [float(x) for x in state["peak_lrs"]]
        self._apply()
