"""Checks that a run is really training: finite weights, weights that move, a loss that leaves chance level.

A step can have a finite loss and a finite gradient and still break the model: with an infinite learning rate
the update itself makes the weights non-finite (:func:`nonfinite_parameters` catches it right after the step). A
run can also end with exit code 0 having learned nothing: an infinite ``eps`` makes every AdamW update zero
(:class:`WeightFingerprint` notices that no trainable weight changed), and a huge learning rate can push the model
to predict the uniform distribution, whose loss is ``ln(vocab)`` (:func:`chance_level_warning`).

Examples:
    >>> import torch
    >>> nonfinite_tensors({"a": torch.ones(2), "b": {"c": torch.tensor([1.0, float("nan")])}})
    ['b.c']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch

logger = logging.getLogger(__name__)


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names (dotted paths) of the floating-point tensors in a nested state that hold a NaN or an infinity."""
    if isinstance(state, torch.Tensor):
        return [prefix.rstrip(".")] if state.is_floating_point() and not bool(torch.isfinite(state).all()) else []
    if isinstance(state, dict):
        return [bad for k, v in state.items() for bad in nonfinite_tensors(v, f"{prefix}{k}.")]
    if isinstance(state, (list, tuple)):
        return [bad for i, v in enumerate(state) for bad in nonfinite_tensors(v, f"{prefix}{i}.")]
    return []


@torch.no_grad()
def nonfinite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the trainable parameters holding a NaN or an infinity (one device sync for all of them)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(p).all() for _, p in named]).cpu()
    return [n for (n, _), ok in zip(named, finite.tolist(), strict=True) if not ok]


class WeightFingerprint:
    """Per-parameter sums of the trainable weights, to tell whether training changed any of them.

    Two float64 sums (of the values and of their squares) per parameter: a zero update leaves them exactly equal,
    any real update changes them.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.values = self._take(model)

    @staticmethod
    @torch.no_grad()
    def _take(model: torch.nn.Module) -> torch.Tensor:
        sums = [torch.stack([p.double().sum(), p.double().pow(2).sum()])
                for p in model.parameters() if p.requires_grad]
        return torch.stack(sums).cpu() if sums else torch.zeros(0, 2, dtype=torch.float64)

    def unchanged(self, model: torch.nn.Module) -> bool:
        return torch.equal(self.values, self._take(model))


def vocab_size(model: torch.nn.Module) -> int | None:
    """The size of the model's output vocabulary, when the model says."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is not None and hasattr(head, "weight"):
        return int(head.weight.shape[0])
    return getattr(getattr(model, "config", None), "vocab_size", None)


def chance_level_warning(losses: Sequence[float], vocab: int | None, window: int = 3,
                         tolerance: float = 1e-3) -> str | None:
    """A warning when the last ``window`` training losses all sit within ``tolerance`` of ``ln(vocab)``,
    the loss of predicting every token with equal probability; None otherwise."""
    if vocab is None or len(losses) < window:
        return None
    chance = math.log(vocab)
    last = losses[-window:]
    if all(math.isfinite(x) and abs(x - chance) <= tolerance * chance for x in last):
        return (f"the training loss stayed at {last[-1]:.4f} for the last {window} steps, the value of a uniform "
                f"guess over {vocab} tokens (ln {vocab} = {chance:.4f}): the model has learned nothing or has "
                f"collapsed; lower training.lr or check the data")
    return None


def idle_run_warnings(model: torch.nn.Module, fingerprint: WeightFingerprint, losses: Sequence[float],
                      steps: tuple[int, int]) -> list[str]:
    """What to warn about at the end of steps ``steps[0]..steps[1]``: no weight changed, or chance-level loss."""
    messages = []
    if steps[1] >= steps[0] and fingerprint.unchanged(model):
        messages.append(f"steps {steps[0]}-{steps[1]} changed no trainable weight: every update was zero; check "
                        f"training.lr, lora_lr and eps (an infinite eps makes AdamW's update zero)")
    chance = chance_level_warning(losses, vocab_size(model))
    return messages + ([chance] if chance else [])
