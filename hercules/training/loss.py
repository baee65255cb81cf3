"""Causal-LM loss that computes logits only where a label needs them.

In supervised fine-tuning (a long prompt, a short answer) almost every position is masked with -100, yet a causal
LM computes ``[B, T, V]`` logits, and with a 50k vocabulary the output projection is a fifth of the forward cost.
:func:`causal_lm_loss` asks the model (HF ``logits_to_keep``) only for the positions whose next token is labelled
in some row of the batch and takes the same mean cross-entropy as Hugging Face's loss, so values and gradients are
unchanged.

Examples:
    >>> import torch
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = tiny_model("llama")
    >>> ids = torch.randint(0, 200, (2, 12)); labels = torch.full_like(ids, -100); labels[:, -2:] = ids[:, -2:]
    >>> batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    >>> torch.allclose(causal_lm_loss(model, batch), model(**batch).loss)
    True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)


def label_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions ``p`` (``[P]``) whose logits predict a labelled token ``labels[:, p + 1]`` in any row."""
    return (labels[:, 1:] != -100).any(dim=0).nonzero().flatten()


def segment_adds_to_loss(labels: torch.Tensor, carries_memory: bool) -> bool:
    """Whether a segment with ``labels`` (``[B, S]``) must run in a segmented loss: it has a labelled target, or a
    memory carries what it read into later segments. A model without memory skips the others."""
    return carries_memory or bool(label_positions(labels).numel())


def causal_lm_loss(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], sparse: bool = True) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled tokens (== ``model(**batch).loss``).

    With ``sparse`` and at most half the positions labelled, only those positions' logits are computed.
    Models whose forward has no ``logits_to_keep`` fall back to the full computation.
    """
    labels = batch["labels"]
    positions = label_positions(labels)
    if not sparse or positions.numel() == 0 or positions.numel() > labels.shape[1] // 2:
        return model(**batch).loss
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    try:
        logits = model(**inputs, logits_to_keep=positions).logits  # [B, P, V]
    except TypeError as err:
        if "logits_to_keep" not in str(err):
            raise
        logger.info("the model takes no logits_to_keep; computing every position's logits")
        return model(**batch).loss
    targets = labels[:, 1:][:, positions]  # [B, P]
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)
