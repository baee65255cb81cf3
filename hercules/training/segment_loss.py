"""The training loss of an input read in segments: memory carried, attention inside each segment only.

:func:`segmented_lm_loss` is the loss of :func:`~hercules.injection.segments.segmented_forward` (mean next-token
cross-entropy over the labelled targets inside each segment; the first token of a segment is no target) with
what training needs on top:

- logits only where a segment has labels (a context segment with none asks the model for one position),
- truncated backpropagation through time: gradients cross at most ``bptt_segments`` segment boundaries,
- activation checkpointing per segment: a segment's activations are recomputed in the backward, so the memory
  kept for the backward is the carried memory states plus one segment's activations, flat in the number of
  segments,
- a model without memory (a twin) skips the segments with no labels: nothing carries out of them, so they add
  nothing to the loss or its gradient.

Examples:
    >>> import torch, hercules
    >>> from hercules.backbones.tiny import tiny_model
    >>> from hercules.injection.segments import segmented_forward
    >>> model = hercules.augment(tiny_model("llama"), {"segment_length": 8})
    >>> ids = torch.randint(3, 259, (2, 20)); batch = {"input_ids": ids, "labels": ids}
    >>> loss = segmented_lm_loss(model, batch, [8, 8, 4])
    >>> torch.allclose(loss, segmented_forward(model, ids, labels=ids, segment_lengths=[8, 8, 4]).loss)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from hercules.injection.segments import segment_windows
from hercules.injection.state import MemoryStates
from hercules.training.loss import label_positions, segment_adds_to_loss
from hercules.training.prefix_cache import FrozenPrefix


def segmented_lm_loss(
    model: nn.Module,
    batch: Mapping[str, Tensor],
    segment_lengths: Sequence[int],
    bptt_segments: int | None = None,
    activation_checkpointing: bool = False,
    prefix: FrozenPrefix | None = None,
) -> Tensor:
    """Mean cross-entropy over the labelled targets of ``batch`` (``input_ids``, ``labels``, optional
    ``attention_mask``, each ``[B, T]``) read in ``segment_lengths`` (the last takes the rest). With ``prefix``, each
    segment runs only the layers above its kept frozen prefix (:mod:`hercules.training.prefix_cache`)."""
    from hercules.injection.augment import memory_layers

    ids, labels = batch["input_ids"], batch["labels"]
    mask = batch.get("attention_mask")
    states = MemoryStates() if memory_layers(model) else None  # a plain backbone takes no memory_states
    total = ids.new_zeros((), dtype=torch.float32)
    count = 0
    for i, window in enumerate(segment_windows(ids.shape[1], segment_lengths=segment_lengths)):
        if not segment_adds_to_loss(labels[:, window], states is not None):
            continue
        seg_mask = None if mask is None else mask[:, window]
        hidden = None if prefix is None else prefix.hidden(model, ids[:, window], seg_mask)
        run = _segment(model, states, ids[:, window], seg_mask, labels[:, window], prefix, hidden)
        if activation_checkpointing and torch.is_grad_enabled():
            loss, n, states = checkpoint(run, use_reentrant=False)
        else:
            loss, n, states = run()
        total, count = total + loss, count + n
        if states is not None and bptt_segments is not None and (i + 1) % bptt_segments == 0:
            states.detach_()
    return total / max(count, 1)


def _segment(model: nn.Module, start: MemoryStates | None, ids: Tensor, mask: Tensor | None, labels: Tensor,
             prefix: FrozenPrefix | None = None, hidden: Tensor | None = None):
    """One segment as a function of nothing but its captured inputs: a recomputation under activation
    checkpointing starts again from ``start`` (never mutated: each run works on its own copy)."""

    def run() -> tuple[Tensor, int, MemoryStates | None]:
        states = None if start is None else MemoryStates(start)
        extra = {} if states is None else {"memory_states": states}
        positions = label_positions(labels)
        keep = positions if positions.numel() else 1
        with nullcontext() if prefix is None else prefix.suffix(hidden):
            out = model(ids, attention_mask=mask, use_cache=False, logits_to_keep=keep, **extra)
        if not positions.numel():
            return out.logits.new_zeros((), dtype=torch.float32), 0, states
        targets = labels[:, 1:][:, positions]
        loss = F.cross_entropy(out.logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100,
                               reduction="sum")
        return loss, int((targets != -100).sum()), states

    return run
