"""Recall accuracy on the segmented MQAR task (:mod:`hercules.data.recall`), by number of pairs and gap.

Three ways to read a sample, so that one trained model and its twins are measured the same way:

- ``memory``: segment by segment, the memory carrying the pairs (:func:`~hercules.injection.segments.segmented_forward`);
- ``no_memory``: the same segments with every memory switched off (attention alone: at chance by construction);
- ``full_attention``: the whole sample as one segment (the upper bound: attention sees the pairs).

Accuracy is the share of queried values whose logits' argmax is the value, teacher-forced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Literal

import torch
from torch import nn

from hercules.injection.segments import segmented_forward

Mode = Literal["memory", "no_memory", "full_attention"]


@torch.no_grad()
def recall_accuracy(model: nn.Module, items: Sequence[dict], mode: Mode = "memory",
                    batch_size: int = 16) -> dict[tuple[int, int], float]:
    """``{(pairs, gaps): accuracy}`` over ``items`` (each cell's items share their layout)."""
    from hercules.injection.augment import memory_disabled, memory_layers

    was_training = model.training
    model.eval()
    cells: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for item in items:
        cells[(item["pairs"], item["gaps"])].append(item)
    off = mode == "no_memory" and memory_layers(model)
    correct: dict[tuple[int, int], list[int]] = {}
    with memory_disabled(model) if off else nullcontext():
        for cell, group in sorted(cells.items()):
            hits = [0, 0]
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                ids = torch.tensor([it["input_ids"] for it in batch], device=_device(model))
                labels = torch.tensor([it["labels"] for it in batch], device=ids.device)
                logits = _logits(model, ids, batch[0]["segment_lengths"], mode)
                targets = labels[:, 1:]
                mask = targets != -100
                hits[0] += int((logits[:, :-1].argmax(-1) == targets)[mask].sum())
                hits[1] += int(mask.sum())
            correct[cell] = hits
    model.train(was_training)
    return {cell: h[0] / max(h[1], 1) for cell, h in correct.items()}


def _logits(model: nn.Module, ids: torch.Tensor, lengths: list[int], mode: Mode) -> torch.Tensor:
    if mode == "full_attention":
        return model(ids, use_cache=False).logits
    return segmented_forward(model, ids, segment_lengths=lengths).logits


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
